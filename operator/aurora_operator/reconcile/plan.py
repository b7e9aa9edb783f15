"""The pure decision: given the cluster and what exists, which small actions bring them together.

Why pure: every rule here (readers are removed highest-ordinal first and never the writer; Secrets are created
once and rewritten only when a rotation asks for it; unchanged objects are not re-applied) is a unit test
away, and an operator restart re-runs the same function on the same world, which is why it resumes without
duplicates.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence

from aurora_api import contract
from aurora_api.contract import SecretsLayout
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..render import accounts, data_api, desired, names, proxy, revision
from ..render.accounts import as_data
from ..settings import Settings
from . import certificates, stranded
from .observed import Manifest, Observed

HASH_ANNOTATION = "quorumdb.io/applied-hash"


@dataclasses.dataclass(frozen=True)
class Apply:
    """Server-side apply of a rendered object (create or update)."""

    manifest: Manifest
    create: bool
    resync: bool = False
    """Unchanged since the last apply by its fingerprint, re-applied anyway to undo manual edits (drift)."""


@dataclasses.dataclass(frozen=True)
class CreateSecret:
    """Create a credential Secret that does not exist yet (never overwrite)."""

    manifest: Manifest


@dataclasses.dataclass(frozen=True)
class RewriteSecret:
    """Replace a Secret the operator made with new content: a password or control-token rotation."""

    manifest: Manifest
    why: str


@dataclasses.dataclass(frozen=True)
class WriteCertificate:
    """Write (create or replace) an operator-issued CA or server certificate Secret."""

    manifest: Manifest
    why: str


@dataclasses.dataclass(frozen=True)
class Delete:
    """Delete an object the spec no longer asks for."""

    api_version: str
    kind: str
    name: str
    cluster_scoped: bool = False


@dataclasses.dataclass(frozen=True)
class SetRole:
    """Set the role label (and writer term annotation) on an instance pod."""

    pod: str
    role: str
    term: int


@dataclasses.dataclass(frozen=True)
class RecreateVolume:
    """Give up a claim whose volume went with its node (``stranded``): delete the claim, then its pod, so
    the StatefulSet re-creates both and the pod is scheduled elsewhere."""

    pod: str
    claim: str
    nodes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class RestartPod:
    """Delete ``pod`` so that its StatefulSet re-creates it from the current template (``maintenance``)."""

    pod: str
    reason: str


Action = (
    Apply | CreateSecret | RewriteSecret | WriteCertificate | Delete | SetRole | RecreateVolume | RestartPod
)


@dataclasses.dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    writer: int
    """Ordinal of the writer instance."""
    ordinals: tuple[int, ...]
    """Ordinals of the instances that should exist, ascending."""
    revisions: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """StatefulSet name -> the template revision its pods should run (``render.revision``)."""


CONTROL_GRACE = datetime.timedelta(minutes=10)
"""How long a rotated control token's predecessor is still accepted: every pod's copy of the Secret is
updated by the kubelet well within it (a minute or two)."""


def control_rotation(
    c: AuroraCluster, observed: Observed, now: datetime.datetime, password: Callable[[], str]
) -> list[Action]:
    """A new control token on request (``ANNOTATION_ROTATE_CONTROL_TOKEN``), the old one kept as ``previous``
    for ``CONTROL_GRACE``; once that has passed, the Secret without it. A request during a grace waits for
    its end (the pods may still hold only the token before)."""
    current = observed.control.get(SecretsLayout.TOKEN, "")
    previous = observed.control.get(SecretsLayout.PREVIOUS, "")
    if not current:
        return []
    if previous:
        ends = _parse_time(observed.control_annotations.get(contract.ANNOTATION_PREVIOUS_TOKEN_UNTIL, ""))
        if ends is not None and now < ends:
            return []
        ended = as_data(accounts.control_secret(c, current))
        return [RewriteSecret(ended, "the previous control token's grace ended")]
    if contract.ANNOTATION_ROTATE_CONTROL_TOKEN not in c.metadata.annotations:
        return []
    until = (now + CONTROL_GRACE).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    rotated = accounts.control_secret(c, password(), previous=current, until=until)
    why = f"a new control token; the previous one is accepted until {until}"
    return [RewriteSecret(as_data(rotated), why)]


def _parse_time(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def describe(action: Action) -> str:
    """One sentence for logs and Events."""
    match action:
        case Apply(manifest=m, create=create, resync=resync):
            verb = "created" if create else ("re-applied" if resync else "updated")
            return f"{verb} {m['kind']} {m['metadata']['name']}"
        case CreateSecret(manifest=m):
            return f"created Secret {m['metadata']['name']} with a generated password"
        case WriteCertificate(manifest=m, why=why) | RewriteSecret(manifest=m, why=why):
            return f"wrote Secret {m['metadata']['name']}: {why}"
        case Delete(kind=kind, name=name):
            return f"deleted {kind} {name}"
        case SetRole(pod=pod, role=role, term=term):
            return f"labelled pod {pod} {contract.LABEL_ROLE}={role} (term {term})"
        case RecreateVolume(pod=pod, claim=claim, nodes=nodes):
            return (
                f"re-created the volume of {pod}: claim {claim} was on node {', '.join(nodes)}, which no "
                "longer exists"
            )
        case RestartPod(pod=pod, reason=reason):
            return f"restarted pod {pod} ({reason})"


def fingerprint(manifest: Manifest) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]


def stamped(manifest: Manifest) -> Manifest:
    """The manifest with its own fingerprint as an annotation, so drift is a string compare."""
    meta = dict(manifest["metadata"])
    meta["annotations"] = {**meta.get("annotations", {}), HASH_ANNOTATION: fingerprint(manifest)}
    return {**manifest, "metadata": meta}


def writer_ordinal(c: AuroraCluster, writer: str | None = None) -> int:
    """``writer`` (the failover decision's), else the one in status, else instance 0 (a new cluster)."""
    name = writer or c.status.target_writer or c.status.writer
    recorded = names.instance_ordinal(c, name) if name else None
    return 0 if recorded is None else recorded


def choose_ordinals(readers: int, writer: int, existing: Iterable[int]) -> tuple[int, ...]:
    """Instances to keep: the writer, then existing readers lowest first, then the lowest free ordinals."""
    chosen = {writer}
    for ordinal in sorted(set(existing) - {writer}):
        if len(chosen) > readers:
            break
        chosen.add(ordinal)
    candidate = 0
    while len(chosen) <= readers:
        chosen.add(candidate)
        candidate += 1
    return tuple(sorted(chosen))


def existing_ordinals(c: AuroraCluster, observed: Observed) -> set[int]:
    found = set()
    for kind, name in observed.objects:
        ordinal = names.instance_ordinal(c, name) if kind == "StatefulSet" else None
        if ordinal is not None:
            found.add(ordinal)
    return found


def plan(
    c: AuroraCluster,
    settings: Settings,
    observed: Observed,
    password: Callable[[], str],
    *,
    resync: bool = False,
    writer_name: str | None = None,
    stranded_claims: Sequence[stranded.Stranded] = (),
    now: datetime.datetime | None = None,
) -> Plan:
    """Actions that move ``observed`` towards ``c.spec``, in apply order.

    Objects whose fingerprint matches are skipped, unless ``resync``: then they are re-applied too, which
    undoes manual edits of fields the operator owns (server-side apply with force is a no-op otherwise).
    ``stranded_claims`` (``stranded.find``) are given up, so that their pods can run on another node.
    ``now`` (the pass's clock) lets certificates be issued and renewed (``certificates``); without it none is.
    """
    actions: list[Action] = []
    for account in names.ACCOUNTS:
        if names.secret(c, account) not in observed.secrets:
            actions.append(CreateSecret(accounts.secret(c, account, password())))
        elif (current := observed.accounts.get(names.secret(c, account))) is not None:
            rewritten = accounts.rewrite(c, account, current, password)
            actions += [RewriteSecret(*rewritten)] if rewritten is not None else []
    if names.control_secret(c) not in observed.secrets:
        actions.append(CreateSecret(accounts.control_secret(c, password())))
    elif now is not None:
        actions += control_rotation(c, observed, now, password)

    writer = writer_ordinal(c, writer_name)
    existing = existing_ordinals(c, observed)
    ordinals = choose_ordinals(c.spec.instances.readers, writer, existing)
    wanted = desired.shared(c, settings)
    if now is not None:
        issued = certificates.plan(c, observed, settings.cluster_domain, ordinals, now)
        actions += [WriteCertificate(secret, why) for secret, why in issued.secrets]
        wanted += [issued.published] if issued.published is not None else []
    for ordinal in ordinals:
        wanted += desired.instance(c, settings, ordinal, writer)
    if proxy.wanted(c):
        wanted.append(proxy.deployment(c, settings, ordinals))
    elif ("Deployment", names.proxy(c)) in observed.objects and c.status.pause is None:
        actions.append(Delete("apps/v1", "Deployment", names.proxy(c)))
    if data_api.wanted(c):
        if names.data_api_keys(c) not in observed.secrets:
            actions.append(CreateSecret(data_api.keys_secret(c)))
        wanted += [data_api.deployment(c, settings), data_api.service(c)]
    else:
        actions += [
            Delete(version, kind, names.data_api(c))
            for version, kind in (("apps/v1", "Deployment"), ("v1", "Service"))
            if (kind, names.data_api(c)) in observed.objects
        ]
    policies = {m["metadata"]["name"] for m in wanted if m["kind"] == "NetworkPolicy"}
    actions += [
        Delete("networking.k8s.io/v1", "NetworkPolicy", name)
        for kind, name in observed.objects
        if kind == "NetworkPolicy" and name not in policies
    ]
    binding = names.token_review_binding(c)
    if ("ClusterRoleBinding", binding) in observed.objects and c.spec.token_login is None:
        actions.append(
            Delete("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", binding, cluster_scoped=True)
        )
    revisions = {
        m["metadata"]["name"]: rev
        for m in wanted
        if m["kind"] == "StatefulSet" and (rev := revision.of_set(m)) is not None
    }
    for manifest in map(stamped, wanted):
        live = observed.objects.get((manifest["kind"], manifest["metadata"]["name"]))
        if live is None:
            actions.append(Apply(manifest, create=True))
        elif (
            live.get("metadata", {}).get("annotations", {}).get(HASH_ANNOTATION)
            != (manifest["metadata"]["annotations"][HASH_ANNOTATION])
        ):
            actions.append(Apply(manifest, create=False))
        elif resync:
            actions.append(Apply(manifest, create=False, resync=True))

    for ordinal in sorted(existing - set(ordinals), reverse=True):
        name = names.instance(c, ordinal)
        actions.append(Delete("apps/v1", "StatefulSet", name))
        if ("Service", name) in observed.objects:
            actions.append(Delete("v1", "Service", name))

    term = max(c.status.term, 1)
    for pod in observed.pods:
        pod_ordinal = names.instance_ordinal(c, pod["metadata"]["name"])
        if pod_ordinal is None or pod_ordinal not in ordinals:
            continue
        role = contract.ROLE_WRITER if pod_ordinal == writer else contract.ROLE_READER
        meta = pod["metadata"]
        if meta.get("labels", {}).get(contract.LABEL_ROLE) != role or meta.get("annotations", {}).get(
            contract.ANNOTATION_TERM
        ) != str(term):
            actions.append(SetRole(meta["name"], role, term))
    actions += [RecreateVolume(s.pod, s.claim, s.nodes) for s in stranded_claims]
    return Plan(tuple(actions), writer, ordinals, revisions)
