"""One instance manager per data volume, enforced by the kernel: an exclusive ``flock`` held for life.

Why: a force-deleted pod's replacement can start on the same volume (a local PersistentVolume pins both to
one node) while the old container is still being killed. The containers have separate PID and IPC
namespaces, so PostgreSQL's own ``postmaster.pid`` check cannot see the old postmaster (its PID means nothing
in the new namespace, and ``lockfile`` would rightly call the lock stale): two postmasters on one PGDATA.
An ``flock`` on a file of the volume is shared by every namespace on the node: the new manager waits until
the old one's processes are gone (the kernel drops the lock when the old container dies, whatever killed it).
It must not touch PGDATA; the caller checks that the volume is ours before taking the lock (the lock file
is the first thing written to it).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)
LOCK_NAME = ".instance-manager.lock"
REPORT_EVERY_SECONDS = 5.0


def hold(data_root: Path, poll: float = 0.2) -> int:
    """Block until this process holds the volume's lock; returns the descriptor (keep it open for life)."""
    data_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(data_root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    started = last_report = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            now = time.monotonic()
            if now - last_report >= REPORT_EVERY_SECONDS:
                log.warning(
                    "waiting %.0fs for the previous instance manager on %s to exit (its volume lock is held)",
                    now - started,
                    data_root,
                )
                last_report = now
            time.sleep(poll)
            continue
        if time.monotonic() - started > poll:
            log.info("volume lock on %s acquired after %.1fs", data_root, time.monotonic() - started)
        return fd
