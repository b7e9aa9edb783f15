"""The rolling update: which pod to restart next, if any, so that every pod runs its current template.

Why this shape (pure, level-based, one step per pass): the progress of a roll is on the pods themselves —
each carries the revision of the template it was created from (``render.revision``) — so an operator
restarted mid-roll computes the same next step from the same world and never restarts a pod twice. The
rules, in order:

- a pod is out of date when its revision differs from its StatefulSet's; role and term are not part of a
  revision, so a failover never makes a pod out of date;
- restarts wait for the maintenance window (``spec.maintenance.window``, weekly, UTC) unless the cluster
  carries ``ANNOTATION_APPLY_NOW``; a roll, once started (``status.maintenance.rollingSince``, recorded
  before the first restart), continues to its end even past the window;
- one pod at a time, and only while every other pod of the cluster is healthy: all six storage nodes
  streaming from the writer at the current term (so a restart keeps the 4-of-6 write quorum and each node has
  caught up before the next), every instance ready, no writer change or base backup in progress;
- storage nodes first, then readers, then a switchover to an up-to-date reader, then the old writer (now a
  reader): writes are unavailable only during the switchover. A cluster without readers restarts its writer
  in place (an outage; refused when its data directory is an emptyDir);
- a restarted pod that does not become healthy (an image that cannot be pulled, a crash loop, or not ready
  within ``POD_TIMEOUT_SECONDS``) stops the roll: no other pod is touched, the condition says which pod and
  why. A pod that is out of date *and* already broken may be replaced at once (that is how reverting a bad
  image recovers).

It must not perform I/O or read the clock: ``now`` is an argument.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Literal

from aurora_api import contract
from aurora_api.v1alpha1 import cluster as api
from aurora_api.v1alpha1.cluster import AuroraCluster
from aurora_api.v1alpha1.common import Condition

from ..render import names, revision
from . import conditions
from .observed import Manifest, Observed, pod_ready
from .plan import RestartPod
from .report import Event

CONDITION = "UpToDate"
POD_TIMEOUT_SECONDS = 300.0
"""A restarted pod not healthy this long after it was created stops the roll."""
FATAL_WAITING = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
"""Container waiting reasons that do not resolve by themselves."""
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEK_MINUTES = 7 * 24 * 60


@dataclasses.dataclass(frozen=True)
class Window:
    """A weekly window in minutes since Monday 00:00 UTC; ``end`` may wrap past the end of the week."""

    start: int
    end: int

    @classmethod
    def parse(cls, text: str) -> Window:
        """``ddd:hh:mm-ddd:hh:mm`` (the API schema checks the syntax)."""
        first, second = text.split("-")

        def minutes(part: str) -> int:
            day, hour, minute = part.split(":")
            return DAYS.index(day) * 1440 + int(hour) * 60 + int(minute)

        return cls(minutes(first), minutes(second))

    @staticmethod
    def _minute(now: datetime.datetime) -> int:
        return now.weekday() * 1440 + now.hour * 60 + now.minute

    def contains(self, now: datetime.datetime) -> bool:
        m = self._minute(now)
        if self.start <= self.end:
            return self.start <= m < self.end
        return m >= self.start or m < self.end

    def next_start(self, now: datetime.datetime) -> datetime.datetime:
        """The next time the window opens (now, to the minute, when it opens this minute)."""
        base = now.replace(second=0, microsecond=0)
        ahead = (self.start - self._minute(now)) % WEEK_MINUTES
        return base + datetime.timedelta(minutes=ahead)


@dataclasses.dataclass(frozen=True)
class Switchover:
    """Ask for a switchover to ``to`` (an up-to-date reader) so the writer can be restarted."""

    to: str


@dataclasses.dataclass(frozen=True)
class Step:
    state: str
    """``UpToDate``, ``Pending`` (waiting for the window), ``Starting`` (record the roll first),
    ``Rolling``, ``Waiting`` (a roll waits for health, a backup or a writer change), ``Stopped``."""
    sentence: str
    outdated: tuple[str, ...] = ()
    total: int = 0
    action: RestartPod | Switchover | None = None
    next_window: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class PodView:
    name: str
    kind: str
    """``storage``, ``reader`` or ``writer``."""
    pod: Manifest | None
    wanted: str | None
    healthy: bool
    problem: str
    """Why it is not healthy (empty when it is)."""

    @property
    def outdated(self) -> bool:
        return self.pod is not None and revision.of_pod(self.pod) != self.wanted


FAILED_START = frozenset({"StartError", "ContainerCannotRun"})
"""Reasons a container terminated with when its process could not even be started."""


def _fatal(pod: Manifest) -> str | None:
    """Why a pod's container cannot run, when that does not resolve by itself."""
    for status in pod.get("status", {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        for stopped in (state.get("terminated"), (status.get("lastState") or {}).get("terminated")):
            if stopped and stopped.get("reason") in FAILED_START:
                return f"{stopped['reason']}: {stopped.get('message', '')}".strip().rstrip(":")[:300]
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in FATAL_WAITING:
            return f"{waiting['reason']}: {waiting.get('message', '')}".strip().rstrip(":")[:300]
    return None


def _age(pod: Manifest, now: datetime.datetime) -> float:
    created = pod.get("metadata", {}).get("creationTimestamp")
    if not created:
        return 0.0
    stamp = datetime.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    return (now - stamp).total_seconds()


def views(
    c: AuroraCluster, observed: Observed, wanted: Mapping[str, str], ordinals: tuple[int, ...], writer: str
) -> list[PodView]:
    """Every pod the cluster should have, storage first, then instances by ordinal."""
    pods = {p["metadata"]["name"]: p for p in observed.pods}
    term = max(c.status.term, 1)
    found = []
    for index, name in enumerate(names.storage_pods(c)):
        pod = pods.get(name)
        node = observed.storage.get(name)
        problem = ""
        if pod is None or pod.get("metadata", {}).get("deletionTimestamp"):
            problem = "restarting" if pod is not None else "missing"
        elif not pod_ready(pod):
            problem = "not ready"
        elif node is None or not node.streaming or node.term != term or node.state == "repairing":
            problem = "not streaming from the writer at the current term yet"
        set_name = names.storage_set(c, index // 2)
        found.append(PodView(name, "storage", pod, wanted.get(set_name), not problem, problem))
    for ordinal in ordinals:
        instance = names.instance(c, ordinal)
        pod_name = names.instance_pod(c, ordinal)
        pod = pods.get(pod_name)
        rep = observed.instances.get(instance)
        kind = "writer" if instance == writer else "reader"
        problem = ""
        if pod is None or pod.get("metadata", {}).get("deletionTimestamp"):
            problem = "restarting" if pod is not None else "missing"
        elif not pod_ready(pod) or rep is None or not rep.ready:
            problem = "not ready"
        elif rep.role != kind:
            problem = f"reports role {rep.role}, expected {kind}"
        found.append(PodView(pod_name, kind, pod, wanted.get(instance), not problem, problem))
    return found


def _stop_reason(view: PodView, now: datetime.datetime) -> str | None:
    """Why a restarted (up-to-date) pod counts as failed, or None while it may still come up."""
    if view.pod is None or view.outdated or view.healthy:
        return None
    fatal = _fatal(view.pod)
    if fatal is not None:
        return fatal
    age = _age(view.pod, now)
    if age > POD_TIMEOUT_SECONDS and view.problem != "restarting":
        return f"{view.problem} {age:.0f}s after it was created"
    return None


def step(
    c: AuroraCluster,
    observed: Observed,
    wanted: Mapping[str, str],
    ordinals: tuple[int, ...],
    writer: str,
    now: datetime.datetime,
) -> Step:
    """The next step of the roll (at most one action)."""
    all_views = views(c, observed, wanted, ordinals, writer)
    outdated = tuple(v.name for v in all_views if v.outdated)
    total = len(all_views)
    if not outdated:
        return Step("UpToDate", f"all {total} pods run their current template", total=total)
    window = Window.parse(c.spec.maintenance.window)
    rolling = c.status.maintenance is not None and c.status.maintenance.rolling_since is not None
    requested = contract.ANNOTATION_APPLY_NOW in c.metadata.annotations
    count = f"{len(outdated)} of {total} pods"
    if c.status.pause is not None:
        return Step("Pending", f"{count} need a restart; waiting for the cluster to resume", outdated, total)
    if not rolling:
        if not (requested or window.contains(now)):
            opens = window.next_start(now)
            return Step(
                "Pending",
                f"{count} need a restart; waiting for the maintenance window {c.spec.maintenance.window} "
                f"(next: {opens.isoformat()}) or annotation {contract.ANNOTATION_APPLY_NOW}",
                outdated, total, next_window=opens,
            )  # fmt: skip
        why = "requested" if requested else f"maintenance window {c.spec.maintenance.window}"
        return Step("Starting", f"rolling update of {count} starts ({why})", outdated, total)
    for view in all_views:
        reason = _stop_reason(view, now)
        if reason is not None:
            return Step(
                "Stopped",
                f"rolling update stopped: {view.name} did not come back healthy with its new template "
                f"({reason}); no other pod will be restarted until it is fixed (revert the change, or "
                "fix the image)",
                outdated, total,
            )  # fmt: skip
    lagging = _sets_not_updated(c, observed, wanted, all_views)
    if lagging:
        return Step(
            "Waiting",
            f"rolling update of {count} waits for StatefulSet {', '.join(lagging)} to take its new template",
            outdated, total,
        )  # fmt: skip
    for view in all_views:
        broken = view.outdated and not view.healthy and view.kind != "writer"
        if broken and view.pod is not None and _fatal(view.pod):
            return Step(
                "Rolling", f"replacing {view.name}: out of date and not running ({_fatal(view.pod)})",
                outdated, total, RestartPod(view.name, "out of date and broken"),
            )  # fmt: skip
    unhealthy = [v for v in all_views if not v.healthy]
    if unhealthy:
        detail = ", ".join(f"{v.name} {v.problem}" for v in unhealthy)
        return Step("Waiting", f"rolling update of {count} waits: {detail}", outdated, total)
    if c.status.failover is not None:
        return Step("Waiting", f"rolling update of {count} waits for the writer change", outdated, total)
    backup = c.status.backup.running if c.status.backup is not None else None
    if backup is not None:
        return Step(
            "Waiting", f"rolling update of {count} waits for base backup {backup.id}", outdated, total
        )
    for kind in ("storage", "reader"):
        due = next((v for v in all_views if v.kind == kind and v.outdated), None)
        if due is not None:
            return Step(
                "Rolling", f"restarting {kind} {due.name} with its new template ({count} out of date)",
                outdated, total, RestartPod(due.name, "rolling update"),
            )  # fmt: skip
    return _writer_step(c, all_views, outdated, total, count)


def _set_of(c: AuroraCluster, view: PodView) -> str:
    if view.kind == "storage":
        return names.storage_set(c, names.storage_pods(c).index(view.name) // 2)
    return names.instance(c, _ordinal(c, view.name))


def _sets_not_updated(
    c: AuroraCluster, observed: Observed, wanted: Mapping[str, str], all_views: list[PodView]
) -> list[str]:
    """StatefulSets of out-of-date pods whose live template (as the controller has seen it) is not the
    wanted one yet: a pod deleted now would come back from the old template and need a second restart."""
    lagging = []
    for name in sorted({_set_of(c, v) for v in all_views if v.outdated}):
        live = observed.objects.get(("StatefulSet", name))
        seen = live is not None and live.get("status", {}).get("observedGeneration") == live.get(
            "metadata", {}
        ).get("generation")
        if live is None or revision.of_set(live) != wanted.get(name) or not seen:
            lagging.append(name)
    return lagging


def _writer_step(c: AuroraCluster, all_views: list[PodView], outdated: tuple[str, ...], total: int,
                 count: str) -> Step:  # fmt: skip
    writer = next(v for v in all_views if v.kind == "writer")
    readers = [v for v in all_views if v.kind == "reader" and not v.outdated and v.healthy]
    if readers:
        ranked = sorted(readers, key=lambda v: (c.spec.instances.tier(_ordinal(c, v.name)), v.name))
        target = names.instance(c, _ordinal(c, ranked[0].name))
        return Step(
            "Rolling", f"switchover to {target} so that writer {writer.name} can be restarted ({count} "
            "out of date)", outdated, total, Switchover(target),
        )  # fmt: skip
    if c.spec.instances.readers > 0:
        return Step("Waiting", f"rolling update of {count} waits for an up-to-date reader", outdated, total)
    if c.spec.instances.data_volume == "EmptyDir":
        return Step(
            "Stopped",
            f"cannot restart {writer.name}: it is the only instance and its data directory is an emptyDir "
            "(add a reader, or use a PersistentVolumeClaim data volume)",
            outdated, total,
        )  # fmt: skip
    return Step(
        "Rolling", f"restarting the only instance {writer.name} (no reader to switch over to: writes stop "
        "until it is back)", outdated, total, RestartPod(writer.name, "rolling update, no reader"),
    )  # fmt: skip


def _ordinal(c: AuroraCluster, pod: str) -> int:
    ordinal = names.instance_ordinal(c, pod)
    assert ordinal is not None
    return ordinal


def status_of(
    c: AuroraCluster, step: Step, now: datetime.datetime
) -> tuple[api.MaintenanceStatus, Condition, list[Event]]:
    """The status block, the ``UpToDate`` condition and the Events of this step (one per change of state,
    one per pod restarted)."""
    before = c.status.maintenance or api.MaintenanceStatus()
    rolling_since = before.rolling_since
    last_completed = before.last_completed
    events: list[Event] = []
    if step.state == "Starting" and rolling_since is None:
        rolling_since = now
    if step.state == "UpToDate" and rolling_since is not None:
        seconds = (now - rolling_since).total_seconds()
        events.append(Event("Normal", "RollCompleted", f"rolling update completed in {seconds:.0f}s"))
        rolling_since, last_completed = None, now
    elif step.state != before.state and step.state != "UpToDate":
        severity: Literal["Normal", "Warning"] = "Warning" if step.state == "Stopped" else "Normal"
        events.append(Event(severity, f"Roll{step.state}", step.sentence))
    if isinstance(step.action, RestartPod):
        events.append(Event("Normal", "PodRestarted", step.sentence))
    elif isinstance(step.action, Switchover):
        events.append(Event("Normal", "RollSwitchover", step.sentence))
    status = api.MaintenanceStatus(
        state=step.state,  # type: ignore[arg-type]
        message=step.sentence[:2048],
        pending_pods=list(step.outdated),
        pods=step.total,
        next_window=step.next_window,
        rolling_since=rolling_since,
        last_completed=last_completed,
    )
    ok = step.state == "UpToDate"
    cond = conditions.make(CONDITION, ok, step.state, step.sentence[:2048], c.metadata.generation)
    return status, cond, events
