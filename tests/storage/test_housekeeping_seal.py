"""The sealing loop: prompt on a notification, prompt on a new file without one, and it wakes the archiver."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aurora_storage import lsn as lsnmod
from aurora_storage.node import housekeeping, runtime, store


def _rt(tmp_path: Path) -> Any:
    return SimpleNamespace(
        store=store.WalStore(tmp_path), wal_changed=runtime.Notifier(), sealed_changed=runtime.Notifier()
    )


async def _until(pred: Any, timeout: float) -> float:
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, "timed out"
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


async def test_sealed_on_notification_and_archiver_woken(tmp_path: Path) -> None:
    rt = _rt(tmp_path)
    # Long fallback: only the notification can make this prompt.
    task = asyncio.create_task(housekeeping.seal(rt, fallback=60))
    try:
        await asyncio.sleep(0.05)
        seen = rt.sealed_changed.generation
        name = lsnmod.segment_name(1, 1)
        (rt.store.wal / name).write_bytes(b"x" * 100)
        rt.wal_changed.notify()
        assert await _until(lambda: rt.store.sealed(name) is not None, 20) < 10  # fallback: 60 s
        assert rt.sealed_changed.generation > seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_sealed_without_notification_by_the_fallback_scan(tmp_path: Path) -> None:
    rt = _rt(tmp_path)
    task = asyncio.create_task(housekeeping.seal(rt, fallback=0.05))
    try:
        await asyncio.sleep(0.1)
        name = lsnmod.segment_name(1, 2)
        (rt.store.wal / name).write_bytes(b"y" * 100)  # no notify(): a receiver that does not report
        await _until(lambda: rt.store.sealed(name) is not None, 2)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
