"""The autoscaler's decision: each serverless instance's target ACU from its recent load. Pure.

Why these rules (docs/serverless.md): an instance needs enough ACU that its CPU use stays under 70 % of its
limit and its memory working set under 80 % of its memory. An instance using (nearly) its whole CPU limit is
throttled and its true demand is unknown, so it is offered at least twice its capacity. Up is quick: two
consecutive samples (about 4 s) above the current capacity raise it straight to what the smaller of them
needs. Down is slow: only after a minute in which every sample needed at least one step less, at most half
the capacity at a time, and never within 30 s of the previous change. Readers in promotion tiers 0 and 1
hold at least the writer's capacity, so a failover lands on an instance already sized for the load.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from aurora_api import capacity
from aurora_api.reports import LoadReport
from lightkube.utils.quantity import parse_quantity

CPU_TARGET = 0.7
MEMORY_TARGET = 0.8
SATURATED = 0.9
"""CPU use at this share of the limit counts as throttled: demand unknown, offer twice the capacity."""
UP_SAMPLES = 2
DOWN_WINDOW_SECONDS = 60.0
COOLDOWN_SECONDS = 30.0
HISTORY_SECONDS = 90.0
FOLLOWING_TIERS = (0, 1)
CONTAINER = "postgres"
"""The instance pod's PostgreSQL container (``render.instances``)."""
Manifest = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Sample:
    """Load over one interval between two reports of the same instance manager."""

    at: float
    """Operator's monotonic clock at the later report."""
    cpu_cores: float
    memory_bytes: int
    connections: int


def sample(before: LoadReport, after: LoadReport, at: float) -> Sample | None:
    """The rate between two cumulative reports; None across a restart (counters reset) or a bad pair."""
    elapsed = after.sampled_at - before.sampled_at
    if elapsed <= 0.2 or before.cpu_seconds is None or after.cpu_seconds is None:
        return None
    used = after.cpu_seconds - before.cpu_seconds
    if used < 0:
        return None
    return Sample(at, used / elapsed, after.memory_working_set_bytes or 0, after.connections or 0)


def need(s: Sample, current: float) -> float:
    """ACU this sample asks for (not rounded, not clamped)."""
    by_cpu = s.cpu_cores / (capacity.CPU_PER_ACU * CPU_TARGET)
    by_memory = s.memory_bytes / (capacity.MEMORY_PER_ACU * MEMORY_TARGET)
    wanted = max(by_cpu, by_memory)
    if current > 0 and s.cpu_cores >= SATURATED * capacity.CPU_PER_ACU * current:
        wanted = max(wanted, 2 * current)
    return wanted


@dataclasses.dataclass(frozen=True)
class Target:
    acu: float
    reason: str


def _clamp(acu: float, low: float, high: float) -> float:
    return min(high, max(low, capacity.step_up(acu)))


def _why(s: Sample, current: float) -> str:
    limit = capacity.CPU_PER_ACU * current
    return (
        f"CPU {s.cpu_cores:.2f} of {limit:.2f} cores, memory {s.memory_bytes / capacity.GIB:.2f} of "
        f"{current * capacity.MEMORY_PER_ACU / capacity.GIB:.1f} GiB, {s.connections} connections"
    )


def own_target(
    samples: Sequence[Sample], current: float, low: float, high: float, last_change: float | None, now: float
) -> Target:
    """The target from this instance's own samples (oldest first); ``current`` when nothing is sustained."""
    if current < low or current > high:
        return Target(_clamp(current, low, high), f"capacity {current} outside [{low}, {high}]")
    recent = samples[-UP_SAMPLES:]
    if len(recent) == UP_SAMPLES:
        up = min(need(s, current) for s in recent)
        if _clamp(up, low, high) > current:
            span = recent[-1].at - recent[0].at
            return Target(_clamp(up, low, high), f"{_why(recent[-1], current)} for {span:.0f} s")
    if last_change is not None and now - last_change < COOLDOWN_SECONDS:
        return Target(current, "cooling down after the last change")
    window = [s for s in samples if now - s.at <= DOWN_WINDOW_SECONDS]
    if not window or now - samples[0].at < DOWN_WINDOW_SECONDS:
        return Target(current, "not enough history to scale down")
    down = max(_clamp(need(s, current), low, high) for s in window)
    if down <= current - capacity.STEP:
        target = max(down, capacity.step_up(current / 2), low)
        if target < current:
            return Target(target, f"{_why(window[-1], current)}; under {target} ACU for a minute")
    return Target(current, "steady")


@dataclasses.dataclass(frozen=True)
class InstanceView:
    """What the decision needs about one instance."""

    name: str
    role: str
    tier: int
    current: float | None
    """ACU asked of the pod (its spec): what the node holds once the kubelet has applied it (a resize the
    node deferred stays asked until a new target replaces it). None when unknown."""
    samples: tuple[Sample, ...]
    last_change: float | None
    resizing: bool
    """The kubelet is applying a resize to this pod now: no decision until it has finished. (A resize the
    node deferred is not in progress: a new target replaces it.)"""
    ceiling: float | None = None
    """Below a capacity the node refused (an infeasible resize), for as long as the pod lives."""


def targets(views: Sequence[InstanceView], low: float, high: float, now: float) -> Mapping[str, Target]:
    """Target ACU per instance that has a known capacity and no resize in flight."""
    low = max(low, capacity.SMALLEST)

    def top(v: InstanceView) -> float:
        return high if v.ceiling is None else max(low, min(high, v.ceiling))

    own = {
        v.name: own_target(v.samples, v.current, low, top(v), v.last_change, now)
        for v in views
        if v.current is not None and not v.resizing
    }
    writer = next((v for v in views if v.role == "writer" and v.current is not None), None)
    if writer is None:
        return own
    lead = max(own[writer.name].acu if writer.name in own else 0.0, writer.current or 0.0)
    out = dict(own)
    for v in views:
        if v.name not in own or v.role != "reader" or v.tier not in FOLLOWING_TIERS:
            continue
        follow = min(lead, top(v))
        if own[v.name].acu < follow:
            out[v.name] = Target(follow, f"follows the writer {writer.name} (promotion tier {v.tier})")
    return out


def trim(samples: Sequence[Sample], now: float) -> tuple[Sample, ...]:
    """Samples young enough to matter."""
    return tuple(s for s in samples if now - s.at <= HISTORY_SECONDS)


def same(a: float, b: float) -> bool:
    return math.isclose(a, b, abs_tol=1e-6)


def _container(pod: Manifest, where: str) -> Manifest:
    for c in pod.get(where, {}).get("containerStatuses" if where == "status" else "containers") or []:
        if c.get("name") == CONTAINER:
            return dict(c)
    return {}


def pod_acu(pod: Manifest) -> float | None:
    """The capacity the pod holds now: the memory limit the kubelet reports applied (the spec's while the
    container has not started)."""
    for where in ("status", "spec"):
        memory = (_container(pod, where).get("resources") or {}).get("limits", {}).get("memory")
        if memory:
            return capacity.acu_of_memory(int(parse_quantity(memory) or 0))
    return None


def resize_state(pod: Manifest) -> tuple[str, str]:
    """("", "") when no resize is outstanding, else (condition reason or "InProgress", message)."""
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") in ("PodResizePending", "PodResizeInProgress") and cond.get("status") == "True":
            reason = cond.get("reason") or ("InProgress" if cond["type"] == "PodResizeInProgress" else "")
            return reason or "Pending", cond.get("message", "")
    return "", ""


def wanted_acu(pod: Manifest) -> float:
    """The capacity the pod's spec asks for (what the last resize requested)."""
    memory = (_container(pod, "spec").get("resources") or {}).get("limits", {}).get("memory", "0")
    return capacity.acu_of_memory(int(parse_quantity(memory) or 0))
