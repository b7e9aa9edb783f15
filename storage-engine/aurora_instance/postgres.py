"""Thin driver for PostgreSQL's binaries and the postmaster child process.

Why: all process handling (initdb, pg_basebackup, pg_rewind, starting and stopping the postmaster) in one
place, each failure raised as ``PostgresError`` carrying the command and its stderr tail, so actions read as
a sequence of steps. It must not decide anything: no role logic here.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from aurora_instance import lockfile

log = logging.getLogger(__name__)

STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


class PostgresError(RuntimeError):
    """A PostgreSQL binary or the postmaster failed; the message names the step and carries stderr."""


@dataclass
class Postgres:
    """One data directory and, while it runs, its postmaster."""

    bin: Path
    pgdata: Path
    socket_dir: Path
    port: int
    passfile: Path
    user: str
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSFILE": str(self.passfile), "PGCONNECT_TIMEOUT": "3"}

    def run(self, what: str, *args: str, timeout: float = 600) -> str:
        """Run a binary from ``bin``; PostgresError with ``what`` and the stderr tail if it fails."""
        cmd = [str(self.bin / args[0]), *args[1:]]
        log.debug("running %s", " ".join(cmd))
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, env=self.env(), timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise PostgresError(f"{what}: {args[0]} timed out after {timeout:.0f}s") from err
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise PostgresError(f"{what}: {args[0]} exited {proc.returncode}: {' | '.join(tail)}")
        return proc.stdout

    def controldata(self) -> dict[str, str]:
        out = self.run("reading pg_control", "pg_controldata", "-D", str(self.pgdata))
        return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60) -> None:
        """Start the postmaster as a child and wait until it accepts connections (or died)."""
        if self.running():
            return
        self.clear_stale_lock()
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self.proc = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.pgdata)], env=self.env(), start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PostgresError(
                    f"postmaster for {self.pgdata} exited {self.proc.returncode} during start-up"
                )
            if self.pm_status(self.proc.pid) in ("ready", "standby"):
                return
            time.sleep(0.05)
        raise PostgresError(f"postmaster for {self.pgdata} not accepting connections after {timeout:.0f}s")

    def pm_status(self, pid: int) -> str | None:
        """Status line of postmaster ``pid`` in postmaster.pid (starting, ready, standby, stopping); None
        while the file is missing or still a dead postmaster's (after a crash it stays behind)."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return None
        if not lines or lines[0].strip() != str(pid):
            return None
        return lines[7].strip() if len(lines) > 7 else None

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        """Stop our postmaster (``smart``/``fast``/``immediate``); escalate to immediate after ``timeout``."""
        if not self.running():
            self.proc = None
            return
        assert self.proc is not None
        self.proc.send_signal(STOP_SIGNALS[mode])
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("postmaster did not stop within %.0fs (%s); stopping immediately", timeout, mode)
            self.proc.send_signal(signal.SIGQUIT)
            self.proc.wait(30)
        self.proc = None

    def reload(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGHUP)

    def _judged_lock(self) -> tuple[lockfile.Lock, str | None] | None:
        """The lock file unless it is our child's, and why it is stale (None: a live postmaster's, maybe)."""
        lock = lockfile.read_lock(self.pgdata)
        if lock is None or (self.proc is not None and self.proc.pid == lock.pid):
            return None
        return lock, lockfile.is_stale(lock, lockfile.read_process(lock.pid))

    def foreign_postmaster(self) -> int | None:
        """PID of a live postmaster on this data directory that is not our child (None otherwise)."""
        judged = self._judged_lock()
        return judged[0].pid if judged is not None and judged[1] is None else None

    def clear_stale_lock(self) -> None:
        """Remove a dead postmaster's lock file, which PostgreSQL takes for a live one when its PID is now
        another process's (see ``lockfile``); a live postmaster's lock stays, for PostgreSQL to refuse."""
        judged = self._judged_lock()
        if judged is not None and judged[1] is not None:
            log.warning("removing a dead postmaster's %s: %s", lockfile.LOCK_FILE, judged[1])
            (self.pgdata / lockfile.LOCK_FILE).unlink(missing_ok=True)
