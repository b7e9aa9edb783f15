"""One reconcile of one cluster, and the teardown on delete: the only entry points handlers call.

Why here and not in the handlers: kopf-specific code stays a few lines (parse, call, write status, post
Events), while the sequence itself is exercised in unit tests against ``kube.FakeKube``.
"""

from __future__ import annotations

import dataclasses
import datetime
import secrets
from collections.abc import Callable

from aurora_api import contract
from aurora_api.v1alpha1 import cluster as api
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..kube import Kube
from ..render import names
from ..settings import Settings
from ..storage_nodes import StorageNodes
from . import apply, checks, observe, plan, report, terms
from .report import Event

REASONS = {
    plan.Apply: "Applied",
    plan.CreateSecret: "SecretCreated",
    plan.Delete: "Deleted",
    plan.SetRole: "RoleSet",
}


def new_password() -> str:
    return secrets.token_urlsafe(24)


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: api.AuroraClusterStatus
    events: list[Event]
    done: list[str]


async def reconcile(
    kube: Kube,
    settings: Settings,
    c: AuroraCluster,
    *,
    now: datetime.datetime | None = None,
    password: Callable[[], str] = new_password,
    resync: bool = False,
    storage: StorageNodes | None = None,
) -> Outcome:
    """Observe, plan, apply, report. Never raises for API failures: they end up in the status.

    ``resync`` re-applies unchanged objects too (drift repair); those re-applies are not reported as done.
    ``storage`` (when given) is used to seed storage nodes that missed the writer's fencing (``terms``).
    """
    observed = await observe.observe(kube, c)
    decided = plan.plan(c, settings, observed, password, resync=resync)
    done, errors = await apply.execute(kube, c.metadata.namespace, decided.actions)
    done = [a for a in done if not (isinstance(a, plan.Apply) and a.resync)]
    seeded = await terms.seed(storage, c, observed) if storage is not None else []
    findings = checks.all_findings(c, observed)
    stamp = (now or datetime.datetime.now(datetime.UTC)).replace(microsecond=0)
    status, events = report.report(c, observed, decided, findings, errors, stamp)
    action_events = [Event("Normal", REASONS[type(a)], plan.describe(a)) for a in done]
    error_events = [Event("Warning", "ApplyFailed", message) for message in errors]
    seed_events = [Event("Normal", "TermSeeded", message) for message in seeded]
    described = [plan.describe(a) for a in done] + seeded
    return Outcome(status, action_events + seed_events + error_events + events, described)


async def teardown(kube: Kube, c: AuroraCluster) -> list[str]:
    """What the finalizer does before garbage collection takes the owned objects; returns what it did.

    Everything the operator created carries an owner reference and goes with the AuroraCluster. The storage
    volumes follow ``spec.storage.reclaimPolicy``: under ``Delete`` the PVCs are deleted here explicitly (the
    StatefulSets' ``whenDeleted: Delete`` would too); under ``Retain`` they stay, and so do the generated
    credential Secrets (their owner references are removed), so an AuroraCluster created again with the same
    name reattaches both.
    """
    ns = c.metadata.namespace
    if c.spec.storage.reclaim_policy == "Retain":
        kept = []
        for account in names.ACCOUNTS:
            if await kube.orphan("v1", "Secret", ns, names.secret(c, account)):
                kept.append(f"kept Secret {names.secret(c, account)}")
        return kept
    claims = await kube.list_objects(
        "v1", "PersistentVolumeClaim", ns, {contract.LABEL_CLUSTER: c.metadata.name}
    )
    deleted = []
    for claim in claims:
        name = claim["metadata"]["name"]
        if await kube.delete("v1", "PersistentVolumeClaim", ns, name):
            deleted.append(f"deleted PVC {name}")
    # Explicit because Secrets kept by an earlier Retain delete and reattached carry no owner reference.
    for account in names.ACCOUNTS:
        if await kube.delete("v1", "Secret", ns, names.secret(c, account)):
            deleted.append(f"deleted Secret {names.secret(c, account)}")
    return deleted
