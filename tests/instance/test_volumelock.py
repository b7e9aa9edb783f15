"""The volume lock: a second manager on the same volume waits until the first one's process is gone.

Real processes and a real ``flock`` on a temporary directory (the kernel is the thing under test)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from aurora_instance import volumelock

HOLD = """
import pathlib, sys, time
from aurora_instance import volumelock
volumelock.hold(pathlib.Path(sys.argv[1]))
print("held", flush=True)
time.sleep(60)
"""


def test_second_holder_waits_until_the_first_process_dies(tmp_path: Path) -> None:
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "held"
        second = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        try:
            time.sleep(1.0)
            assert second.poll() is None
            first.kill()  # as a container kill: the kernel drops the lock with the process
            first.wait()
            t0 = time.monotonic()
            assert second.stdout is not None and second.stdout.readline().strip() == "held"
            assert time.monotonic() - t0 < 5
        finally:
            second.kill()
            second.wait()
    finally:
        first.kill()
        first.wait()


def test_same_process_gets_the_lock_at_once(tmp_path: Path) -> None:
    fd = volumelock.hold(tmp_path / "fresh")
    assert (tmp_path / "fresh" / volumelock.LOCK_NAME).exists() and fd >= 0
