"""Runs one long action at a time off the decision loop (Patroni's ``async_executor``).

Why: bootstrap, promotion and rewind take seconds to minutes; the loop and the HTTP status must keep
answering meanwhile, and two actions must never overlap. It must not decide which action to run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)


class Executor:
    def __init__(self, on_done: Callable[[], None]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="action")
        self._lock = threading.Lock()
        self._on_done = on_done
        self.running: str | None = None
        self.last_failure: str | None = None
        self.last_result: str | None = None
        self.failed_at: float | None = None

    def submit(self, name: str, fn: Callable[[], str], now: float) -> bool:
        with self._lock:
            if self.running is not None:
                return False
            self.running = name
        future: Future[str] = self._pool.submit(fn)
        future.add_done_callback(lambda f: self._finish(name, f, now))
        return True

    def _finish(self, name: str, future: Future[str], started: float) -> None:
        err = future.exception()
        with self._lock:
            self.running = None
            if err is None:
                self.last_result, self.last_failure, self.failed_at = future.result(), None, None
                log.info("%s done: %s", name, self.last_result)
            else:
                self.last_failure, self.failed_at = f"{name} failed: {err}", time.monotonic()
                log.error("%s failed after %.1fs: %s", name, time.monotonic() - started, err, exc_info=err)
        self._on_done()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
