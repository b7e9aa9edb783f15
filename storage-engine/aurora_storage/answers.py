"""Ask every storage node at once and stop waiting once enough have answered (plus a short grace).

Why it exists: a promotion asks all six nodes twice (fence, read the tail) and needs only a quorum of
them; on a loaded cluster one node is often hundreds of milliseconds slower than the rest, and waiting for
it was a visible part of a failover. The stragglers' requests still finish in the background (a fence still
reaches them), their answers unread. The rule that makes stopping early safe belongs to each caller: it
says when the answers so far are ``enough``.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

GRACE_S = 0.1
"""How long to wait for the other answers once the answers so far are enough."""


def gather(
    calls: Sequence[Callable[[], T]], enough: Callable[[list[T]], bool], grace: float = GRACE_S
) -> list[T]:
    """Run ``calls`` concurrently; return their results as they arrive, until all answered or ``grace``
    seconds after ``enough(results so far)`` first held. Calls still running are not cancelled."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(calls) or 1)
    pending = {pool.submit(call) for call in calls}
    got: list[T] = []
    deadline: float | None = None
    try:
        while pending:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, pending = concurrent.futures.wait(
                pending, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED
            )
            if not done:
                break
            got += [f.result() for f in done]
            if deadline is None and enough(got):
                deadline = time.monotonic() + grace
    finally:
        pool.shutdown(wait=False)
    return got
