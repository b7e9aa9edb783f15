"""When is a postmaster.pid stale (``lockfile.is_stale``), and do the /proc readers report what it needs?"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from aurora_instance import lockfile
from aurora_instance.lockfile import Lock, Process

T0 = 1_800_000_000.0
LOCK = Lock(pid=13, started=T0)


def test_a_live_postmaster_holds_its_lock() -> None:
    assert lockfile.is_stale(LOCK, Process(13, 13, "postgres", T0 - 0.5)) is None
    assert lockfile.is_stale(LOCK, Process(13, 13, None, T0)) is None  # another user's: cannot read exe


def test_dead_pid_reused_pid_thread_or_other_program_is_stale() -> None:
    assert "not running" in (lockfile.is_stale(LOCK, None) or "")
    assert "thread of process 1" in (lockfile.is_stale(LOCK, Process(13, 1, "python3.11", T0 + 60)) or "")
    assert "not postgres" in (lockfile.is_stale(LOCK, Process(13, 13, "sleep", T0 - 10)) or "")
    assert "after" in (lockfile.is_stale(LOCK, Process(13, 13, "postgres", T0 + 60)) or "")
    assert lockfile.is_stale(LOCK, Process(13, 13, "postgres", T0 + lockfile.START_SLACK_S)) is None


def test_read_lock(tmp_path: Path) -> None:
    assert lockfile.read_lock(tmp_path) is None
    (tmp_path / lockfile.LOCK_FILE).write_text(f"13\n{tmp_path}\n{int(T0)}\n5432\n")
    assert lockfile.read_lock(tmp_path) == Lock(13, T0)
    (tmp_path / lockfile.LOCK_FILE).write_text("13\n")  # torn write: not a lock to judge
    assert lockfile.read_lock(tmp_path) is None


def test_read_process_tells_a_thread_from_a_process() -> None:
    me = lockfile.read_process(os.getpid())
    assert me is not None and me.tgid == me.pid and me.exe_name is not None
    assert time.time() - 3600 * 24 * 365 < me.started <= time.time() + 1
    tid: list[int] = []
    release = threading.Event()

    def worker() -> None:
        tid.append(threading.get_native_id())
        release.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    try:
        while not tid:
            time.sleep(0.01)
        thread = lockfile.read_process(tid[0])
        assert thread is not None and thread.tgid == os.getpid() and thread.pid != os.getpid()
    finally:
        release.set()
        t.join()
    assert lockfile.read_process(2**22 + 1) is None  # above pid_max's ceiling: never a process
