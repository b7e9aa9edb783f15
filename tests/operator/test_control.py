"""The control token rule (``aurora_api.control``): read from a file, compared in constant time."""

from __future__ import annotations

from pathlib import Path

import pytest
from aurora_api import control


def test_a_server_without_a_usable_token_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no control token"):
        control.read(tmp_path)
    control.token_file(tmp_path).parent.mkdir(parents=True)
    control.token_file(tmp_path).write_text("short\n")
    with pytest.raises(ValueError, match="shorter than 16"):
        control.read(tmp_path)
    control.token_file(tmp_path).write_text("a-long-enough-random-token\n")
    assert control.read(tmp_path) == "a-long-enough-random-token"


def test_only_the_bearer_token_itself_passes() -> None:
    token = "t" * 32
    assert control.verdict(control.headers(token)[control.HEADER], token) is None
    assert control.verdict(None, token) == 401 and control.verdict("", token) == 401
    assert control.verdict(f"Basic {token}", token) == 403
    assert control.verdict("Bearer " + "t" * 31, token) == 403
