"""Who writes: the pure failover and switchover decision, from what the instances and storage nodes report.

Why pure and separate from ``plan``: this is the one place where a mistake loses data or makes two writers,
so every rule is a unit test on literal reports. The rules:

- the operator owns the writer's identity and the term. A change of writer is **recorded first** (status
  ``failover``, ``targetWriter`` and the raised ``term``, written with the object's resourceVersion as a
  precondition, so two operators or a stale view can never record two), and only then carried out through
  the instance managers' idempotent ``promote``/``demote``; a restarted operator finds the record and drives
  the same change to its end;
- a writer has failed when its pod is gone or being deleted, when its status endpoint has been silent for
  ``GRACE_SECONDS``, or when it reports that it lost its data directory or serves another system;
- the target is the reader with the lowest promotion tier, then the most advanced (timeline, received LSN);
- a writer that lost its data directory with no reader to take over (a single-instance cluster) is chosen
  again at a raised term when the cluster has an object store: its instance manager re-seeds it from the
  newest base backup and promotes it through the storage quorum's WAL (every acknowledged commit);
- no promotion while fewer than ``READ_QUORUM`` storage nodes answer (the promotion could not read the WAL
  tail that holds every acknowledged commit); the storage quorum's term fences the old writer before the new
  one opens (the instance manager's promote fences first);
- instances that follow an older term are told the current writer (``demote``), so a former writer comes back
  as a reader and never as a second writer.

It must not perform I/O or read the clock: ``now`` is an argument.
"""

from __future__ import annotations

import dataclasses
import datetime

from aurora_api import contract
from aurora_api.reports import InstanceReport
from aurora_api.v1alpha1 import cluster as api
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..render import names
from .observed import Manifest, Observed, container_running, pod_gone

GRACE_SECONDS = 2.0
"""A writer whose status endpoint stays silent this long has failed (the probe runs every second)."""
PROMOTE_TIMEOUT_SECONDS = 90.0
"""A target not ready as writer this long after the decision is abandoned for the next candidate."""
SWITCHOVER_ANNOTATION = f"{contract.API_GROUP}/switchover"
"""Set on the AuroraCluster to ask for a switchover: an instance name, or ``any`` for the best reader."""


@dataclasses.dataclass(frozen=True)
class Promote:
    """Ask ``instance`` to become the writer at ``term``."""

    instance: str
    term: int


@dataclasses.dataclass(frozen=True)
class Demote:
    """Ask ``instance`` to follow the writer endpoint as a reader at ``term``."""

    instance: str
    term: int
    writer: str


InstanceAction = Promote | Demote


@dataclasses.dataclass(frozen=True)
class Decision:
    sentence: str
    """What was decided, in words: logged, and the message of the Events."""
    writer: str
    """The instance that carries the writer label: the target while a change is in progress."""
    start: api.WriterChange | None = None
    """A change to record (with the resourceVersion precondition) before any action is sent."""
    completed: api.WriterChange | None = None
    """The change in progress has completed: record it as the last one."""
    actions: tuple[InstanceAction, ...] = ()
    blocked: str | None = None
    """Why a needed change cannot happen now (a condition and a Warning Event)."""
    clear_request: bool = False
    """Remove the switchover annotation (done, or refused)."""


def parse_lsn(text: str | None) -> int:
    if not text or "/" not in text:
        return -1
    high, low = text.split("/", 1)
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        return -1


def _pod(c: AuroraCluster, observed: Observed, instance: str) -> Manifest | None:
    ordinal = names.instance_ordinal(c, instance)
    pod_name = names.instance_pod(c, ordinal) if ordinal is not None else ""
    return next((p for p in observed.pods if p["metadata"]["name"] == pod_name), None)


def failure(c: AuroraCluster, observed: Observed, instance: str) -> str | None:
    """Why ``instance`` cannot serve as the writer, or None when nothing says so."""
    if _pod(c, observed, instance) is None:
        return f"pod of {instance} is gone"
    pod = _pod(c, observed, instance)
    if pod_gone(pod):
        return f"pod of {instance} is being deleted"
    if pod is not None and not container_running(pod):
        return f"pod of {instance} is not running (re-created, or its container restarting)"
    report = observed.instances.get(instance)
    silent = observed.silent_seconds.get(instance, 0.0)
    if report is None and silent >= GRACE_SECONDS:
        return f"{instance} has not answered for {silent:.1f}s"
    if report is not None and report.seed_needed:
        return f"{instance} lost its data directory"
    known = c.status.system_identifier
    if report is not None and known and report.system_identifier and report.system_identifier != known:
        return f"{instance} serves system {report.system_identifier}, not the cluster's {known}"
    return None


def candidates(c: AuroraCluster, observed: Observed, exclude: set[str]) -> list[str]:
    """Readers able to take over, best first: promotion tier, then (timeline, received LSN), then name."""
    found: list[tuple[tuple[int, int, int, str], str]] = []
    for name, report in observed.instances.items():
        if name in exclude or report is None or failure(c, observed, name) is not None:
            continue
        if report.role != contract.ROLE_READER or not report.postmaster_running or not report.data_present:
            continue
        ordinal = names.instance_ordinal(c, name)
        tier = c.spec.instances.tier(ordinal) if ordinal is not None else 15
        lsn = max(parse_lsn(report.received_lsn), parse_lsn(report.replayed_lsn))
        found.append(((tier, -(report.timeline or 0), -lsn, name), name))
    return [name for _, name in sorted(found)]


def storage_answering(observed: Observed) -> int:
    return sum(1 for report in observed.storage.values() if report is not None)


def _followers(
    observed: Observed, term: int, endpoint: str, writer: str, *, everyone: bool = False
) -> list[InstanceAction]:
    """Demote every answering instance other than ``writer`` that follows an older term or claims to write."""
    actions: list[InstanceAction] = []
    for name, report in sorted(observed.instances.items()):
        if name == writer or report is None:
            continue
        if everyone or report.term < term or report.role == contract.ROLE_WRITER:
            actions.append(Demote(name, term, endpoint))
    return actions


def _begin(
    c: AuroraCluster,
    observed: Observed,
    now: datetime.datetime,
    *,
    kind: str,
    from_writer: str | None,
    term: int,
    reason: str,
    exclude: set[str],
    wanted: str | None = None,
) -> Decision:
    current = c.status.target_writer or c.status.writer or names.instance(c, 0)
    answering = storage_answering(observed)
    if answering < contract.READ_QUORUM:
        return Decision(
            f"{kind} needed ({reason}) but only {answering} of {contract.STORAGE_NODES} storage nodes "
            "answer: "
            f"a promotion needs {contract.READ_QUORUM} to read every acknowledged commit; waiting",
            current,
            blocked=f"only {answering} of {contract.STORAGE_NODES} storage nodes reachable",
        )
    ranked = candidates(c, observed, exclude)
    if wanted is not None and wanted not in ranked:
        return Decision(
            f"switchover to {wanted} refused: it is not a running reader of this cluster "
            f"(candidates: {', '.join(ranked) or 'none'})",
            current,
            blocked=f"switchover target {wanted} is not a running reader",
            clear_request=True,
        )
    if not ranked:
        lost = from_writer is not None and _lost_data(observed, from_writer)
        if from_writer is not None and lost and c.spec.backup is not None:
            return _reseed(c, observed, now, kind=kind, writer=from_writer, term=term, reason=reason)
        store = ", and no object store to re-seed it from" if lost else ""
        return Decision(
            f"{kind} needed ({reason}) but no reader can take over{store}; waiting for one "
            f"(or for {from_writer} to come back)",
            current,
            blocked=f"no reader available to promote{store}",
        )
    target = wanted or ranked[0]
    change = api.WriterChange.model_validate(
        {"kind": kind, "from": from_writer, "to": target, "term": term, "reason": reason, "startedAt": now}
    )
    endpoint = names.endpoint(c, names.writer_service(c))
    actions = [Promote(target, term), *_followers(observed, term, endpoint, target, everyone=True)]
    return Decision(
        f"{kind}: promoting {target} at term {term} ({reason})", target, start=change, actions=tuple(actions)
    )


def _lost_data(observed: Observed, instance: str) -> bool:
    report = observed.instances.get(instance)
    return report is not None and report.seed_needed


def _reseed(
    c: AuroraCluster, observed: Observed, now: datetime.datetime, *, kind: str, writer: str, term: int,
    reason: str,
) -> Decision:  # fmt: skip
    """Choose the data-less writer again at ``term``: the raised term is what tells its instance manager
    that the control plane decided, so it re-seeds from the object store instead of waiting."""
    why = f"{reason}; no reader can take over: re-seeding it from the object store"
    change = api.WriterChange.model_validate(
        {"kind": kind, "from": writer, "to": writer, "term": term, "reason": why, "startedAt": now}
    )
    endpoint = names.endpoint(c, names.writer_service(c))
    actions = [Promote(writer, term), *_followers(observed, term, endpoint, writer, everyone=True)]
    return Decision(
        f"{kind}: re-seeding {writer} from the object store's newest base backup, then promoting it at "
        f"term {term} ({reason})",
        writer,
        start=change,
        actions=tuple(actions),
    )


def _drive(
    c: AuroraCluster, observed: Observed, change: api.WriterChange, now: datetime.datetime
) -> Decision:
    target, term = change.to, change.term
    report: InstanceReport | None = observed.instances.get(target)
    endpoint = names.endpoint(c, names.writer_service(c))
    reseed = change.from_writer == target
    if report is not None and report.role == contract.ROLE_WRITER and report.term == term and report.ready:
        seconds = round((now - change.started_at).total_seconds(), 2)
        done = change.model_copy(update={"completed_at": now, "seconds": seconds})
        return Decision(
            f"{change.kind} to {target} completed at term {term}, timeline {report.timeline}, "
            f"{seconds}s after the decision ({change.reason})",
            target,
            completed=done,
            actions=tuple(_followers(observed, term, endpoint, target)),
            clear_request=change.kind == "switchover",
        )
    broken = failure(c, observed, target)
    if reseed and report is not None and report.seed_needed and report.term < term:
        broken = None  # still waiting as before: the promote at the new term has not reached it yet
    elapsed = (now - change.started_at).total_seconds()
    seeding = reseed and report is not None and report.action is not None  # progress, however long
    if broken is None and elapsed > PROMOTE_TIMEOUT_SECONDS and not seeding:
        broken = f"{target} not ready as writer {elapsed:.0f}s after the decision"
    if broken is not None:
        return _begin(
            c, observed, now, kind=change.kind, from_writer=change.from_writer, term=term + 1,
            reason=f"{broken} during the {change.kind} ({change.reason})", exclude={target},
        )  # fmt: skip
    actions = [Promote(target, term), *_followers(observed, term, endpoint, target)]
    return Decision(
        f"{change.kind} to {target} at term {term} in progress ({elapsed:.1f}s)",
        target,
        actions=tuple(actions),
    )


def decide(c: AuroraCluster, observed: Observed, now: datetime.datetime) -> Decision:
    """The writer this pass, and what to record and request so that exactly one instance writes."""
    status = c.status
    writer = status.writer or names.instance(c, 0)
    term = max(status.term, 1)
    if status.failover is not None:
        return _drive(c, observed, status.failover, now)
    endpoint = names.endpoint(c, names.writer_service(c))
    stragglers = tuple(_followers(observed, term, endpoint, writer))
    if not status.system_identifier:
        # The cluster has never reported a running writer: there is nothing to fail over yet.
        return Decision(f"waiting for {writer} to bootstrap the cluster", writer)
    broken = failure(c, observed, writer)
    if broken is not None:
        return _begin(
            c, observed, now, kind="failover", from_writer=writer, term=term + 1, reason=broken,
            exclude={writer},
        )  # fmt: skip
    request = c.metadata.annotations.get(SWITCHOVER_ANNOTATION)
    if request is not None:
        wanted = None if request in ("", "any") else request
        if wanted == writer:
            return Decision(f"switchover to {writer} requested: it already is the writer", writer,
                            actions=stragglers, clear_request=True)  # fmt: skip
        report = observed.instances.get(writer)
        if report is None or not report.ready:
            return Decision(
                f"switchover requested but writer {writer} is not ready; waiting", writer, actions=stragglers
            )
        return _begin(
            c, observed, now, kind="switchover", from_writer=writer, term=term + 1,
            reason=f"requested ({SWITCHOVER_ANNOTATION}={request})", exclude={writer}, wanted=wanted,
        )  # fmt: skip
    return Decision(f"{writer} writes at term {term}", writer, actions=stragglers)
