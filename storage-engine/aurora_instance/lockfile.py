"""Is the ``postmaster.pid`` in PGDATA a live postmaster's, or one a dead postmaster left behind?

Why it exists: PostgreSQL refuses to start while the PID in its lock file is alive, whatever that process is.
In a container the PIDs start again from 1 after every restart, so the PID a killed postmaster wrote is soon
taken by another process, often a thread of the instance manager itself (``kill(tid, 0)`` succeeds for a
thread). PostgreSQL then refuses for ever ("lock file "postmaster.pid" already exists"): seen on the kind
demo cluster after its nodes were stopped and started. Patroni answers this by comparing the process's
start time with the lock file's; so does this module.

A lock file is stale when its PID is dead, is a thread rather than a process, is not a ``postgres``
executable, or started after the lock file's postmaster did (a reused PID). Only a stale lock is ever
removed; a live postmaster on the directory is left alone and PostgreSQL's own refusal stands. The decision
(:func:`is_stale`) is pure; :func:`read_lock` and :func:`read_process` gather the facts from PGDATA and
``/proc``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LOCK_FILE = "postmaster.pid"
START_SLACK_S = 3.0
"""The postmaster writes its start time (whole seconds) into the lock file moments after it starts."""


@dataclass(frozen=True)
class Lock:
    pid: int
    started: float  # epoch seconds, line 3 of postmaster.pid


@dataclass(frozen=True)
class Process:
    pid: int
    tgid: int  # thread group (process) id: differs from pid for a thread
    exe_name: str | None  # basename of /proc/<pid>/exe; None when unreadable (another user's process)
    started: float  # epoch seconds


def is_stale(lock: Lock, proc: Process | None) -> str | None:
    """Why the lock is stale (a reason to log), or None while it may belong to a live postmaster."""
    if proc is None:
        return f"pid {lock.pid} is not running"
    if proc.tgid != proc.pid:
        return f"pid {lock.pid} is now a thread of process {proc.tgid}"
    if proc.exe_name is not None and proc.exe_name != "postgres":
        return f"pid {lock.pid} is now {proc.exe_name}, not postgres"
    if proc.started > lock.started + START_SLACK_S:
        return f"pid {lock.pid} started {proc.started - lock.started:.0f}s after the lock file's postmaster"
    return None


def read_lock(pgdata: Path) -> Lock | None:
    """The lock file's PID and start time; None when there is no (complete) lock file."""
    try:
        lines = (pgdata / LOCK_FILE).read_text().splitlines()
        return Lock(int(lines[0]), float(lines[2]))
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def read_process(pid: int) -> Process | None:
    """Facts about ``pid`` (a process or a thread) from /proc; None when it does not exist."""
    base = Path(f"/proc/{pid}")
    try:
        stat = (base / "stat").read_text()
        status = (base / "status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    starttime_ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22 of /proc/<pid>/stat
    tgid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Tgid:"))
    try:
        exe_name: str | None = os.path.basename(os.readlink(base / "exe")).removesuffix(" (deleted)")
    except OSError:  # another user's process (no ptrace access), or a kernel thread
        exe_name = None
    started = _boot_time() + starttime_ticks / os.sysconf("SC_CLK_TCK")
    return Process(pid, tgid, exe_name, started)
