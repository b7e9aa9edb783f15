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
from ..settings import Settings
from . import apply, checks, observe, plan, report
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
) -> Outcome:
    """Observe, plan, apply, report. Never raises for API failures: they end up in the status."""
    observed = await observe.observe(kube, c)
    decided = plan.plan(c, settings, observed, password)
    done, errors = await apply.execute(kube, c.metadata.namespace, decided.actions)
    findings = checks.all_findings(c, observed)
    stamp = (now or datetime.datetime.now(datetime.UTC)).replace(microsecond=0)
    status, events = report.report(c, observed, decided, findings, errors, stamp)
    action_events = [Event("Normal", REASONS[type(a)], plan.describe(a)) for a in done]
    error_events = [Event("Warning", "ApplyFailed", message) for message in errors]
    return Outcome(status, action_events + error_events + events, [plan.describe(a) for a in done])


async def teardown(kube: Kube, c: AuroraCluster) -> list[str]:
    """What the finalizer does before garbage collection takes the owned objects.

    Everything the operator created carries an owner reference and goes with the AuroraCluster. PVCs are the
    exception: StatefulSets own them only under ``whenDeleted: Delete``, so under ``reclaimPolicy: Delete``
    they are deleted here explicitly (belt and braces) and under ``Retain`` they are left, labelled, for a
    cluster of the same name to adopt.
    """
    if c.spec.storage.reclaim_policy == "Retain":
        return []
    ns = c.metadata.namespace
    claims = await kube.list_objects(
        "v1", "PersistentVolumeClaim", ns, {contract.LABEL_CLUSTER: c.metadata.name}
    )
    deleted = []
    for claim in claims:
        name = claim["metadata"]["name"]
        if await kube.delete("v1", "PersistentVolumeClaim", ns, name):
            deleted.append(name)
    return deleted
