"""restore_command's helper gives up on a fetch in flight as soon as a promotion creates the hold file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from aurora_instance import walfetch


def test_a_finished_fetch_answers_its_result(tmp_path: Path) -> None:
    assert walfetch.fetch_unless(lambda: True, tmp_path / "hold") is True
    assert walfetch.fetch_unless(lambda: False, None) is False


def test_a_failing_fetch_answers_absent(tmp_path: Path) -> None:
    def broken() -> bool:
        raise OSError("no route to host")

    assert walfetch.fetch_unless(broken, tmp_path / "hold") is False


def test_the_hold_file_abandons_a_fetch_in_flight(tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    release = threading.Event()

    def slow() -> bool:
        release.wait(10)
        return True

    threading.Timer(0.1, hold.touch).start()
    started = time.monotonic()
    try:
        assert walfetch.fetch_unless(slow, hold, poll=0.01) is None
        assert time.monotonic() - started < 2
    finally:
        release.set()


def test_a_hold_present_from_the_start_does_not_abandon_a_quick_fetch(tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    hold.touch()  # restore_command's shell answers "absent" itself then; a race only costs one answer
    assert walfetch.fetch_unless(lambda: True, hold, poll=0.5) is True
