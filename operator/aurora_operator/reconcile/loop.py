"""One reconcile of one cluster, and the teardown on delete: the only entry points handlers call.

Why here and not in the handlers: kopf-specific code stays a few lines (parse, call, write status, post
Events), while the sequence itself is exercised in unit tests against ``kube.FakeKube``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import secrets
from collections.abc import Callable
from typing import Literal

from aurora_api import contract
from aurora_api.contract import SecretsLayout
from aurora_api.v1alpha1 import cluster as api
from aurora_api.v1alpha1 import snapshot as snap
from aurora_api.v1alpha1.cluster import AuroraCluster
from aurora_api.v1alpha1.common import Condition

from ..instances import Instances
from ..kube import Kube
from ..objectstore import StoreError
from ..render import names, podspec
from ..settings import Settings
from ..storage_nodes import StorageNodes
from . import (
    apply,
    backup_pass,
    checks,
    conditions,
    failover,
    maintenance,
    observe,
    parameters,
    plan,
    report,
    restore,
    stranded,
    terms,
)
from .report import Event

log = logging.getLogger(__name__)

REASONS = {
    plan.Apply: "Applied",
    plan.CreateSecret: "SecretCreated",
    plan.RewriteSecret: "SecretRewritten",
    plan.WriteCertificate: "CertificateIssued",
    plan.Delete: "Deleted",
    plan.SetRole: "RoleSet",
    plan.RecreateVolume: "VolumeRecreated",
    plan.RestartPod: "PodRestarted",
}


def _severity(action: plan.Action) -> Literal["Normal", "Warning"]:
    """Giving up a volume is worth a person's attention; the other actions are routine."""
    return "Warning" if isinstance(action, plan.RecreateVolume) else "Normal"


def new_password() -> str:
    return secrets.token_urlsafe(24)


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: api.AuroraClusterStatus | None
    """None when the pass stopped early (its recorded decision lost a race): write nothing."""
    events: list[Event]
    done: list[str]


def _with_status(c: AuroraCluster, **changes: object) -> AuroraCluster:
    return c.model_copy(update={"status": c.status.model_copy(update=changes)})


async def reconcile(
    kube: Kube,
    settings: Settings,
    c: AuroraCluster,
    *,
    now: datetime.datetime | None = None,
    password: Callable[[], str] = new_password,
    resync: bool = False,
    storage: StorageNodes | None = None,
    instances: Instances | None = None,
    silence: observe.Silence | None = None,
) -> Outcome:
    """Observe, decide who writes (recording a change first), plan, apply, report. Never raises for API
    failures: they end up in the status.

    ``resync`` re-applies unchanged objects too (drift repair); those re-applies are not reported as done.
    ``storage`` and ``instances`` are the HTTP clients of the pods; without them nothing is known about the
    processes (unit tests of rendering), so no failover is decided and storage health is unknown.
    """
    precise = now or datetime.datetime.now(datetime.UTC)
    stamp = precise.replace(microsecond=0)  # conditions; writer changes are timed precisely
    if c.spec.restore is not None and c.status.restore is None:
        return await restore_gate(kube, c, stamp)
    observed = await observe.observe(kube, c, instances, storage, silence)
    decision = failover.decide(c, observed, precise)
    events: list[Event] = []
    if decision.start is not None:
        change = decision.start
        record = {
            "failover": change.model_dump(by_alias=True, mode="json"),
            "targetWriter": change.to,
            "term": change.term,
        }
        if not await kube.patch_cluster_status(
            c.metadata.namespace, c.metadata.name, record, c.metadata.resource_version
        ):
            log.info("not starting the %s: the AuroraCluster changed since it was read", change.kind)
            return Outcome(None, [], [])
        log.warning("%s", decision.sentence)
        c = _with_status(c, failover=change, target_writer=change.to, term=change.term)
        # Its Events come from the status written (``announce``): posted exactly once, even across a restart.
    if decision.completed is not None:
        done_change = decision.completed
        log.warning("%s", decision.sentence)
        c = _with_status(
            c, writer=done_change.to, target_writer=None, failover=None, last_failover=done_change
        )
    accepted, refused = parameters.accept(c, observed)
    decided = plan.plan(
        accepted, settings, observed, password, resync=resync, writer_name=decision.writer,
        stranded_claims=stranded.find(observed, precise), now=precise,
    )  # fmt: skip
    roll = maintenance.step(c, observed, decided.revisions, decided.ordinals, decision.writer, precise)
    if decision.start is not None or decision.completed is not None:
        roll = dataclasses.replace(roll, action=None)  # a writer change this pass: the next pass decides
    # Promote/demote requests and the plan (role labels first) concurrently: a promotion takes seconds and
    # its clients need the writer label in place when it ends, not a pass of API calls later.
    (requests, (done, errors)) = await asyncio.gather(
        apply.request(instances, observed.instance_urls, decision.actions),
        apply.execute(kube, c.metadata.namespace, decided.actions),
    )
    rotated = any(isinstance(a, plan.RewriteSecret) and SecretsLayout.PREVIOUS in a.manifest["data"]
                  for a in done)  # fmt: skip
    if rotated and contract.ANNOTATION_ROTATE_CONTROL_TOKEN in c.metadata.annotations:
        await kube.patch_cluster_annotations(
            c.metadata.namespace, c.metadata.name, {contract.ANNOTATION_ROTATE_CONTROL_TOKEN: None}
        )
    if decision.clear_request and failover.SWITCHOVER_ANNOTATION in c.metadata.annotations:
        await kube.patch_cluster_annotations(
            c.metadata.namespace, c.metadata.name, {failover.SWITCHOVER_ANNOTATION: None}
        )
        if decision.blocked:
            events.append(Event("Warning", "SwitchoverRefused", decision.sentence))
    roll_said = await _roll(kube, c, roll, errors)
    done = [a for a in done if not (isinstance(a, plan.Apply) and a.resync)]
    seeded = await terms.seed(storage, c, observed) if storage is not None else []
    findings = checks.all_findings(c, observed, precise)
    status, reported = report.report(c, observed, decided, decision, findings, errors, stamp)
    held, held_cond, roll_events = maintenance.status_of(c, roll, precise)
    params_cond, params_events = _parameters_condition(c, refused)
    merged = conditions.merge(c.status.conditions, [held_cond, params_cond], stamp)
    status = status.model_copy(update={"maintenance": held, "conditions": [*status.conditions, *merged]})
    action_events = [Event(_severity(a), REASONS[type(a)], plan.describe(a)) for a in done]
    error_events = [Event("Warning", "ApplyFailed", message) for message in errors]
    seed_events = [Event("Normal", "TermSeeded", message) for message in seeded]
    described = [plan.describe(a) for a in done] + seeded + requests + roll_said
    every = events + action_events + seed_events + error_events + reported + roll_events + params_events
    return Outcome(status, every, described)


async def _roll(kube: Kube, c: AuroraCluster, roll: maintenance.Step, errors: list[str]) -> list[str]:
    """Carry out the roll's step (after the plan's applies, so a restarted pod finds its new template):
    restart one pod, or ask for the switchover; at the end, clear the one-shot apply-now request."""
    ns, name = c.metadata.namespace, c.metadata.name
    said: list[str] = []
    if isinstance(roll.action, plan.RestartPod):
        done, failed = await apply.execute(kube, ns, (roll.action,))
        errors += failed
        said += [plan.describe(a) for a in done]
    elif (
        isinstance(roll.action, maintenance.Switchover)
        and c.metadata.annotations.get(failover.SWITCHOVER_ANNOTATION) != roll.action.to
    ):
        await kube.patch_cluster_annotations(ns, name, {failover.SWITCHOVER_ANNOTATION: roll.action.to})
        said.append(f"requested a switchover to {roll.action.to} for the rolling update")
    if roll.state == "UpToDate" and contract.ANNOTATION_APPLY_NOW in c.metadata.annotations:
        await kube.patch_cluster_annotations(ns, name, {contract.ANNOTATION_APPLY_NOW: None})
    return said


def _parameters_condition(c: AuroraCluster, refused: list[str]) -> tuple[Condition, list[Event]]:
    gen = c.metadata.generation
    if not refused:
        message = f"all {len(c.spec.postgresql.parameters)} parameters are applied"
        return conditions.make(parameters.CONDITION, True, "Accepted", message, gen), []
    message = "refused (the pods keep their current value): " + "; ".join(refused)
    cond = conditions.make(parameters.CONDITION, False, "Refused", message[:2048], gen)
    before = next((x for x in c.status.conditions if x.type == parameters.CONDITION), None)
    changed = before is None or before.message != cond.message
    return cond, [Event("Warning", "ParametersRefused", message[:1024])] if changed else []


async def _restore_source(kube: Kube, c: AuroraCluster) -> tuple[api.ObjectStoreSpec, str] | str:
    """Where the backups to restore are: the source cluster's archive, or a Completed AuroraSnapshot's
    own prefix; a sentence when the snapshot is missing or not Completed (retried each pass)."""
    r = c.spec.restore
    assert r is not None
    if r.snapshot is None:
        source = podspec.restore_source(c)
        assert source is not None  # the spec's validation requires an object store
        return source
    group = f"{contract.API_GROUP}/{contract.API_VERSION}"
    raw = await kube.get(group, snap.KIND, c.metadata.namespace, r.snapshot)
    if raw is None:
        return f"AuroraSnapshot {r.snapshot!r} not found in this namespace"
    found = snap.AuroraSnapshot.model_validate(raw)
    if found.status.phase != "Completed" or found.status.object_store is None:
        return f"AuroraSnapshot {r.snapshot!r} is {found.status.phase or 'Pending'}, not Completed"
    return found.status.object_store, found.status.prefix


async def restore_gate(kube: Kube, c: AuroraCluster, now: datetime.datetime) -> Outcome:
    """A cluster restored from backups: read the source's catalog and decide (``restore.check``) before
    anything is created. A refused target is final (the spec is immutable); an unreadable store is retried
    on the next pass."""
    gen = c.metadata.generation
    refused = next((x for x in c.status.conditions if x.type == restore.CONDITION), None)
    if refused is not None and refused.reason == "TargetOutsideWindow":
        return Outcome(None, [], [])
    source = await _restore_source(kube, c)
    if isinstance(source, str):
        cond = conditions.make(restore.CONDITION, False, "SnapshotNotReady", source, gen)
        merged = conditions.merge(c.status.conditions, [cond], now)
        return Outcome(c.status.model_copy(update={"phase": "Pending", "conditions": merged}), [], [])
    store_spec, prefix = source
    url = f"s3://{store_spec.bucket}/{prefix}"
    try:
        store = await backup_pass.store_for(kube, c.metadata.namespace, store_spec, prefix)
        catalog = await asyncio.to_thread(store.catalog)
    except (LookupError, ValueError, *StoreError) as err:
        message = f"cannot read the source's backups at {url}: {str(err)[:400]}"
        cond = conditions.make(restore.CONDITION, False, "SourceUnavailable", message, gen)
        merged = conditions.merge(c.status.conditions, [cond], now)
        status = c.status.model_copy(update={"phase": "Pending", "conditions": merged})
        repeated = refused is not None and refused.reason == "SourceUnavailable"
        events = [] if repeated else [Event("Warning", "RestoreSourceUnavailable", message)]
        return Outcome(status, events, [])
    decided = restore.check(c, catalog, store_spec, prefix)
    if isinstance(decided, str):
        cond = conditions.make(restore.CONDITION, False, "TargetOutsideWindow", decided, gen)
        merged = conditions.merge(c.status.conditions, [cond], now)
        status = c.status.model_copy(update={"phase": "Failed", "conditions": merged})
        return Outcome(status, [Event("Warning", "RestoreRefused", f"{decided}; nothing was created")], [])
    message = (
        f"restoring base backup {decided.backup_id} of {url} to {decided.target} (window {decided.window})"
    )
    cond = conditions.make(restore.CONDITION, True, "Decided", message, gen)
    merged = conditions.merge(c.status.conditions, [cond], now)
    status = c.status.model_copy(update={"phase": "Provisioning", "restore": decided, "conditions": merged})
    return Outcome(status, [Event("Normal", "RestoreDecided", message)], [message])


async def needs_attention(kube: Kube, instances: Instances, c: AuroraCluster) -> bool:
    """A cheap check between full passes: a writer change is in progress or requested, or the writer's pod
    is gone or its status endpoint does not answer (or reports it cannot serve)."""
    status = c.status
    if status.failover is not None or failover.SWITCHOVER_ANNOTATION in c.metadata.annotations:
        return True
    if not status.writer or not status.system_identifier:
        return False
    ordinal = names.instance_ordinal(c, status.writer)
    labels = {contract.LABEL_CLUSTER: c.metadata.name, contract.LABEL_INSTANCE: status.writer}
    pods = await kube.list_objects("v1", "Pod", c.metadata.namespace, labels)
    pod = next(
        (p for p in pods if ordinal is not None and p["metadata"]["name"] == names.instance_pod(c, ordinal)),
        None,
    )
    if pod is None or pod["metadata"].get("deletionTimestamp"):
        return True
    url = observe.pod_url(pod, contract.INSTANCE_HTTP_PORT)
    report = await instances.status(url) if url else None
    if report is not None and report.paused and status.pause is not None:
        return False  # stopped by the auto-pause, not failed
    return report is None or report.seed_needed or report.role != contract.ROLE_WRITER


async def teardown(kube: Kube, c: AuroraCluster) -> list[str]:
    """What the finalizer does before garbage collection takes the owned objects; returns what it did.

    Everything the operator created carries an owner reference and goes with the AuroraCluster. The storage
    volumes follow ``spec.storage.reclaimPolicy``: under ``Delete`` the PVCs are deleted here explicitly (the
    StatefulSets' ``whenDeleted: Delete`` would too); under ``Retain`` they stay, and so do the generated
    credential Secrets (their owner references are removed), so an AuroraCluster created again with the same
    name reattaches both.
    """
    ns = c.metadata.namespace
    binding = names.token_review_binding(c)  # cluster-scoped: no owner reference, so deleted here
    unbound = await kube.delete("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", binding)
    done = [f"deleted ClusterRoleBinding {binding}"] if unbound else []
    if c.spec.storage.reclaim_policy == "Retain":
        kept = list(done)
        for account in names.ACCOUNTS:
            if await kube.orphan("v1", "Secret", ns, names.secret(c, account)):
                kept.append(f"kept Secret {names.secret(c, account)}")
        return kept
    claims = await kube.list_objects(
        "v1", "PersistentVolumeClaim", ns, {contract.LABEL_CLUSTER: c.metadata.name}
    )
    deleted = list(done)
    for claim in claims:
        name = claim["metadata"]["name"]
        if await kube.delete("v1", "PersistentVolumeClaim", ns, name):
            deleted.append(f"deleted PVC {name}")
    # Explicit because Secrets kept by an earlier Retain delete and reattached carry no owner reference.
    for account in names.ACCOUNTS:
        if await kube.delete("v1", "Secret", ns, names.secret(c, account)):
            deleted.append(f"deleted Secret {names.secret(c, account)}")
    return deleted
