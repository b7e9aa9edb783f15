"""The instance's load and capacity, read from its own cgroup: what the operator's autoscaler decides from.

Why the cgroup and not the metrics API: it is what the kernel enforces for this container (CPU time used and
throttled, memory in use and its limit), it changes the moment the kubelet resizes the pod in place, and it
needs no metrics-server on the cluster. Counters are cumulative; the operator turns two reports into rates.
Both cgroup layouts are read: v2 (``cpu.stat``, ``memory.max``) and v1 (``cpuacct.usage``, ``cpu.cfs_*``,
``memory.limit_in_bytes``), since the kind test bed runs on a cgroup-v1 host.
"""

from __future__ import annotations

import time
from pathlib import Path

from aurora_api.reports import LoadReport

CGROUP_ROOT = Path("/sys/fs/cgroup")
UNLIMITED = 1 << 62
"""cgroup v1 reports "no memory limit" as a huge number near 2**63."""


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    if text is None or text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _stat(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def _limit(value: int | None) -> int | None:
    return None if value is None or value >= UNLIMITED else value


def read(root: Path = CGROUP_ROOT, connections: int | None = None) -> LoadReport:
    """This container's load now (fields None where the cgroup does not say)."""
    if (root / "cgroup.controllers").exists():
        return _v2(root, connections)
    return _v1(root, connections)


def _v2(root: Path, connections: int | None) -> LoadReport:
    cpu = _stat(_read(root / "cpu.stat"))
    quota = (_read(root / "cpu.max") or "max").split()
    cores = int(quota[0]) / int(quota[1]) if len(quota) == 2 and quota[0] != "max" else None
    memory = _stat(_read(root / "memory.stat"))
    usage = _int(_read(root / "memory.current"))
    working = None if usage is None else max(0, usage - memory.get("inactive_file", 0))
    return LoadReport(
        sampled_at=time.monotonic(),
        cpu_seconds=cpu["usage_usec"] / 1e6 if "usage_usec" in cpu else None,
        cpu_throttled_seconds=cpu["throttled_usec"] / 1e6 if "throttled_usec" in cpu else None,
        cpu_limit_cores=cores,
        memory_working_set_bytes=working,
        memory_limit_bytes=_limit(_int(_read(root / "memory.max"))),
        connections=connections,
    )


def _v1(root: Path, connections: int | None) -> LoadReport:
    cpu_dir = root / "cpu" if (root / "cpu").exists() else root / "cpu,cpuacct"
    acct = root / "cpuacct" if (root / "cpuacct" / "cpuacct.usage").exists() else cpu_dir
    usage_ns = _int(_read(acct / "cpuacct.usage"))
    throttled = _stat(_read(cpu_dir / "cpu.stat")).get("throttled_time")
    quota, period = _int(_read(cpu_dir / "cpu.cfs_quota_us")), _int(_read(cpu_dir / "cpu.cfs_period_us"))
    cores = quota / period if quota is not None and quota > 0 and period else None
    memory = _stat(_read(root / "memory" / "memory.stat"))
    usage = _int(_read(root / "memory" / "memory.usage_in_bytes"))
    working = None if usage is None else max(0, usage - memory.get("total_inactive_file", 0))
    return LoadReport(
        sampled_at=time.monotonic(),
        cpu_seconds=usage_ns / 1e9 if usage_ns is not None else None,
        cpu_throttled_seconds=throttled / 1e9 if throttled is not None else None,
        cpu_limit_cores=cores,
        memory_working_set_bytes=working,
        memory_limit_bytes=_limit(_int(_read(root / "memory" / "memory.limit_in_bytes"))),
        connections=connections,
    )
