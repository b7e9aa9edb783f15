"""``answers.gather``: stop waiting for the slowest storage nodes once the answers so far are enough."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from aurora_storage import answers


def _after(seconds: float, value: int, done: threading.Event | None = None) -> Callable[[], int]:
    def call() -> int:
        time.sleep(seconds)
        if done is not None:
            done.set()
        return value

    return call


def test_every_answer_when_all_arrive_before_enough() -> None:
    got = answers.gather([_after(0.0, i) for i in range(4)], lambda r: len(r) >= 10)
    assert sorted(got) == [0, 1, 2, 3]


def test_a_straggler_is_not_awaited_once_enough_answered_but_still_runs() -> None:
    slow_done = threading.Event()
    calls = [_after(0.0, 1), _after(0.0, 2), _after(0.0, 3), _after(1.5, 4, slow_done)]
    began = time.monotonic()
    got = answers.gather(calls, lambda r: len(r) >= 3, grace=0.05)
    assert time.monotonic() - began < 1.0
    assert sorted(got) == [1, 2, 3]
    assert slow_done.wait(5), "the straggler's call was abandoned instead of finishing in the background"


def test_the_grace_collects_answers_arriving_just_after_enough() -> None:
    calls = [_after(0.0, 1), _after(0.0, 2), _after(0.0, 3), _after(0.05, 4), _after(2.0, 5)]
    got = answers.gather(calls, lambda r: len(r) >= 3, grace=0.5)
    assert sorted(got) == [1, 2, 3, 4]
