"""The control token rule (``aurora_api.control``): read from a file, compared in constant time; during a
rotation the previous token is accepted too, and clients try theirs in order."""

from __future__ import annotations

from pathlib import Path

import pytest
from aurora_api import control


def test_a_server_without_a_usable_token_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no control token"):
        control.read(tmp_path)
    with pytest.raises(ValueError, match="no control token"):
        control.mounted(tmp_path)
    control.token_file(tmp_path).parent.mkdir(parents=True)
    control.token_file(tmp_path).write_text("short\n")
    with pytest.raises(ValueError, match="shorter than 16"):
        control.read(tmp_path)
    control.token_file(tmp_path).write_text("a-long-enough-random-token\n")
    assert control.read(tmp_path) == "a-long-enough-random-token"


def test_only_the_bearer_token_itself_passes() -> None:
    token = "t" * 32
    assert control.verdict(control.headers(token)[control.HEADER], (token,)) is None
    assert control.verdict(None, (token,)) == 401 and control.verdict("", (token,)) == 401
    assert control.verdict(f"Basic {token}", (token,)) == 403
    assert control.verdict("Bearer " + "t" * 31, (token,)) == 403
    assert control.verdict("Bearer t", (token,)) == 403
    assert control.verdict("Bearer ", ("",)) == 403  # no empty token is ever accepted


def test_a_rotation_is_followed_as_the_mounted_secret_changes(tmp_path: Path) -> None:
    old, new = "o" * 24, "n" * 24
    folder = control.token_file(tmp_path).parent
    folder.mkdir(parents=True)
    control.token_file(tmp_path).write_text(old)
    tokens = control.mounted(tmp_path)
    assert tokens() == (old,)
    # What the kubelet writes when the operator rotates: the new token and the previous one.
    control.token_file(tmp_path).write_text(new)
    (folder / "previous").write_text(old)
    assert tokens() == (new, old)
    assert control.verdict(control.headers(old)[control.HEADER], tokens()) is None
    assert control.verdict(control.headers(new)[control.HEADER], tokens()) is None
    assert [h[control.HEADER] for h in control.attempts(tokens())] == [f"Bearer {new}", f"Bearer {old}"]
    # The grace over: the previous token is refused again.
    (folder / "previous").unlink()
    assert control.verdict(control.headers(old)[control.HEADER], tokens()) == 403
    # A read that fails midway (the files being replaced) keeps the last good answer.
    control.token_file(tmp_path).unlink()
    assert tokens() == (new,)
