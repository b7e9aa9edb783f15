"""Execute a plan's actions, one at a time, collecting failures instead of stopping at the first.

Why keep going: an object the API server refuses (a quota, a webhook, a bad image field) must not keep the
rest of the cluster from being reconciled; each failure becomes part of the ``Reconciled`` condition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from aurora_api import contract

from ..instances import Instances
from ..kube import Kube
from .failover import Demote, InstanceAction, Promote
from .plan import (
    Action,
    Apply,
    CreateSecret,
    Delete,
    RecreateVolume,
    RestartPod,
    RewriteSecret,
    SetRole,
    WriteCertificate,
    describe,
)

log = logging.getLogger(__name__)


async def execute(kube: Kube, namespace: str, actions: tuple[Action, ...]) -> tuple[list[Action], list[str]]:
    """Run ``actions``; returns (actions done, error messages).

    Role labels go first, concurrently: the writer Service follows the label, so a failover's clients wait
    for it, not for the StatefulSet updates. Readers are labelled before the writer, so two pods never
    carry the writer label at once (a switchover's old writer still runs). The rest runs in plan order.
    """
    labels = [a for a in actions if isinstance(a, SetRole)]
    rest = [a for a in actions if not isinstance(a, SetRole)]
    results = await asyncio.gather(
        *(_attempt(kube, namespace, a) for a in labels if a.role != contract.ROLE_WRITER)
    )
    results += await asyncio.gather(
        *(_attempt(kube, namespace, a) for a in labels if a.role == contract.ROLE_WRITER)
    )
    for action in rest:
        results.append(await _attempt(kube, namespace, action))
    done = [a for a, changed, _ in results if changed]
    errors = [error for _, _, error in results if error is not None]
    return done, errors


async def _attempt(kube: Kube, namespace: str, action: Action) -> tuple[Action, bool, str | None]:
    try:
        changed = await _one(kube, namespace, action)
    except Exception as err:
        log.warning("while trying to %s: %s", describe(action), err)
        return action, False, f"{describe(action)} failed: {err}"
    if changed:
        log.info("%s", describe(action))
    return action, changed, None


async def _one(kube: Kube, namespace: str, action: Action) -> bool:
    match action:
        case Apply(manifest=manifest):
            await kube.apply(manifest)
            return True
        case CreateSecret(manifest=manifest):
            return await kube.create(manifest)
        case WriteCertificate(manifest=manifest) | RewriteSecret(manifest=manifest):
            await kube.apply(manifest)
            return True
        case Delete(api_version=api_version, kind=kind, name=name, cluster_scoped=cluster_scoped):
            return await kube.delete(api_version, kind, "" if cluster_scoped else namespace, name)
        case RecreateVolume(pod=pod, claim=claim):
            # The claim first: it waits (pvc-protection) until the pod is gone, so the StatefulSet cannot
            # re-create the pod on the old claim.
            await kube.delete("v1", "PersistentVolumeClaim", namespace, claim)
            await kube.delete("v1", "Pod", namespace, pod)
            return True
        case RestartPod(pod=pod):
            return await kube.delete("v1", "Pod", namespace, pod)
        case SetRole(pod=pod, role=role, term=term):
            labels = {contract.LABEL_ROLE: role}
            await kube.patch_metadata(
                "v1", "Pod", namespace, pod, labels, {contract.ANNOTATION_TERM: str(term)}
            )
            return True


async def request(
    instances: Instances | None, urls: Mapping[str, str], actions: tuple[InstanceAction, ...]
) -> list[str]:
    """Send promote/demote requests (promotions first, concurrently within each kind); one sentence each.
    Without an instances client (unit tests of rendering) nothing is sent.

    The instance side is idempotent per term, so a request repeated every pass until the instance reports
    the result is harmless; an instance without an address is skipped (it is asked again next pass).
    """
    if instances is None:
        return []
    client = instances  # narrowed for the closure

    async def one(action: InstanceAction) -> str | None:
        url = urls.get(action.instance)
        if url is None:
            return None
        if isinstance(action, Promote):
            code = await client.promote(url, action.term)
            what = f"promote {action.instance} to writer at term {action.term}"
        else:
            code = await client.demote(url, action.term, action.writer)
            what = f"demote {action.instance} to a reader of {action.writer} at term {action.term}"
        log.info("requested: %s -> %s", what, code or "unreachable")
        return f"requested: {what} ({code or 'unreachable'})"

    promotions = [a for a in actions if isinstance(a, Promote)]
    demotions = [a for a in actions if isinstance(a, Demote)]
    said = list(await asyncio.gather(*(one(a) for a in promotions)))
    said += await asyncio.gather(*(one(a) for a in demotions))
    return [s for s in said if s is not None]
