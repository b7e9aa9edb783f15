"""runtime.Notifier: several loops wait for "something changed" and none misses a notification."""

from __future__ import annotations

import asyncio

from aurora_storage.node import runtime


async def test_waiters_see_a_notification_that_came_while_they_were_busy() -> None:
    n = runtime.Notifier()
    seen = n.generation
    n.notify()  # arrives before the consumer waits (it was busy working)
    assert await asyncio.wait_for(n.wait(seen, 10), 1) == seen + 1


async def test_every_waiter_wakes_and_timeout_returns_unchanged() -> None:
    n = runtime.Notifier()
    assert await n.wait(n.generation, 0.01) == 0
    waiters = [asyncio.create_task(n.wait(0, 10)) for _ in range(3)]
    await asyncio.sleep(0)
    n.notify()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [1, 1, 1]


async def test_invalidate_wakes_the_repair_loop() -> None:
    r = runtime.RepairProgress(repairing=False)
    r.wake.clear()
    r.invalidate()
    assert r.repairing and r.wake.is_set()
