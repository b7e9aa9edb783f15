"""The capacity model: what one Aurora capacity unit (ACU) is in Kubernetes resources and PostgreSQL settings.

Why shared by the operator and the instance manager: the operator sizes pods (and resizes them in place) in
ACU; the instance manager reads its own cgroup's memory limit and derives the settings that follow memory
live. Both must agree on what an ACU is, so the numbers live here and nowhere else.

The trade-off (docs/serverless.md): every setting that needs a restart is fixed for the pod's life from the
spec's minimum (``shared_buffers`` from the minimum, so the smallest pod still fits it; ``max_connections`` a
constant), so that no resize ever restarts PostgreSQL. Memory the pod gains above
the minimum works as page cache and as per-query memory (``work_mem``, ``maintenance_work_mem``) and is
announced to the planner (``effective_cache_size``): those follow the ACU on reload.
"""

from __future__ import annotations

import math

MIB = 1 << 20
GIB = 1 << 30
MEMORY_PER_ACU = 2 * GIB
"""Aurora: about 2 GiB of memory per ACU."""
CPU_PER_ACU = 0.5
"""Cores an instance may use per ACU (its CPU limit): 4 ACU use a whole 2-core test machine."""
CPU_REQUEST_SHARE = 0.5
"""The CPU request is this share of the limit, so a small node can hold a writer at its maximum next to its
storage pods; the limit, not the request, is what an ACU buys."""
STEP = 0.5
"""ACU move in steps of 0.5 (Aurora Serverless v2)."""
SMALLEST = 0.5
"""The smallest running capacity."""
MAX_CONNECTIONS = 500
"""Serverless ``max_connections`` (a cap; an idle connection costs little): raise it in
``spec.postgresql.parameters``."""


PAUSED_CPU_MILLIS = 10
PAUSED_MEMORY_MIB = 128
"""A paused instance's requests: what its manager (PostgreSQL is stopped) needs; the rest is released."""


def running(min_acu: float) -> float:
    """The smallest capacity an instance runs at (``minCapacity`` 0 means paused, not 0 ACU running)."""
    return max(min_acu, SMALLEST)


def memory_bytes(acu: float) -> int:
    return int(acu * MEMORY_PER_ACU)


def cpu_millis(acu: float) -> int:
    return round(acu * CPU_PER_ACU * 1000)


def resources(acu: float) -> dict[str, dict[str, str]]:
    """The instance container's requests and limits at ``acu``: memory requested as limited (it is what the
    pod may hold), CPU limited at ``CPU_PER_ACU`` per ACU and requested at ``CPU_REQUEST_SHARE`` of that."""
    memory = f"{memory_bytes(acu) // MIB}Mi"
    limit = cpu_millis(acu)
    return {
        "requests": {"cpu": f"{max(1, int(limit * CPU_REQUEST_SHARE))}m", "memory": memory},
        "limits": {"cpu": f"{limit}m", "memory": memory},
    }


def paused_resources(acu: float) -> dict[str, dict[str, str]]:
    """A paused instance's container: requests down to the manager's needs, so the scheduler can give the
    node to others, and the limits of ``acu`` kept. Why keep the limits: a resume then starts PostgreSQL at
    once, without waiting for the kubelet to apply a resize (the requests are raised back after), and the
    pod's QoS class (which a resize cannot change) stays Burstable."""
    return {
        "requests": {"cpu": f"{PAUSED_CPU_MILLIS}m", "memory": f"{PAUSED_MEMORY_MIB}Mi"},
        "limits": resources(acu)["limits"],
    }


def acu_of_memory(limit_bytes: int) -> float:
    """The ACU a memory limit stands for (to the step below: a pod never claims more than it holds)."""
    return math.floor(limit_bytes / MEMORY_PER_ACU / STEP + 1e-9) * STEP


def fitting(cores: float, memory: int) -> float:
    """The largest capacity whose requests a node offering ``cores`` and ``memory`` can hold (empty)."""
    by_cpu = cores / (CPU_PER_ACU * CPU_REQUEST_SHARE)
    return math.floor(min(by_cpu, memory / MEMORY_PER_ACU) / STEP + 1e-9) * STEP


def step_up(acu: float) -> float:
    """``acu`` rounded up to the next step."""
    return math.ceil(acu / STEP - 1e-9) * STEP


def static_parameters(min_acu: float) -> dict[str, str]:
    """Restart-only settings, fixed for the pod's life: ``shared_buffers`` a quarter of the smallest running
    capacity's memory (at least 128 MB), ``max_connections`` ``MAX_CONNECTIONS`` whatever the range (a
    standby refuses to replay from a writer with a higher value, so a value that moved with maxCapacity
    would stall the rolling restart that applies a lower one)."""
    smallest = running(min_acu)
    shared = max(128, memory_bytes(smallest) // 4 // MIB)
    return {"shared_buffers": f"{shared}MB", "max_connections": str(MAX_CONNECTIONS)}


def live_parameters(memory_limit_bytes: int) -> dict[str, str]:
    """Reloadable settings that follow the pod's current memory limit: ``effective_cache_size`` three
    quarters of it, ``work_mem`` 1/256 (at least 4 MB), ``maintenance_work_mem`` 1/16 (64 MB to 2 GB)."""
    mib = memory_limit_bytes // MIB
    return {
        "effective_cache_size": f"{mib * 3 // 4}MB",
        "work_mem": f"{max(4, mib // 256)}MB",
        "maintenance_work_mem": f"{min(2048, max(64, mib // 16))}MB",
    }
