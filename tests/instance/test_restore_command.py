"""A reader's restore_command: the storage quorum first; the cluster's own archive (``--archive``) only
when no storage node has the file, inside the same abandonable fetch, and never while a promotion holds the
WAL (the shell answers "absent" before any interpreter starts)."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
from aurora_api import contract
from aurora_instance import backends, files, restore_source, settings, walfetch
from aurora_storage import client

SEGMENT = "000000010000000000000003"
ENV = {
    contract.EnvInstance.ROLE: "reader",
    contract.Env.WRITER_ENDPOINT: "w:5432",
    contract.Env.CLUSTER_NAME: "c1",
}


def run_shell(tmp_path: Path, *, archive: bool, hold: bool) -> list[str]:
    """Runs the command for one segment with a stand-in interpreter; the arguments it was started with."""
    calls = tmp_path / "calls"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    python.chmod(0o755)
    s = dataclasses.replace(settings.from_env({**ENV, contract.Env.DATA_DIR: str(tmp_path / "data")}),
                            python=str(python))  # fmt: skip
    s.wal_cache.mkdir(parents=True)
    if hold:
        s.wal_hold.touch()
    command = files.restore_command(s, archive=archive).replace("%f", SEGMENT).replace("%p", "out")
    subprocess.run(["sh", "-c", command], check=False)
    return calls.read_text().split("\n")[:-1] if calls.exists() else []


@pytest.mark.parametrize("archive", [False, True])
def test_the_helper_is_asked_with_the_archive_flag_only_for_a_cluster_with_a_store(
    tmp_path: Path, archive: bool
) -> None:
    [call] = run_shell(tmp_path, archive=archive, hold=False)
    assert call.startswith("-m aurora_instance.walfetch " + ("--archive " if archive else "") + SEGMENT)


def test_a_promotion_hold_answers_absent_without_starting_the_helper(tmp_path: Path) -> None:
    assert run_shell(tmp_path, archive=True, hold=True) == []


class Quorum:
    def __init__(self, has: bool, trimmed: bool = True) -> None:
        self.has, self.is_trimmed, self.asked = has, trimmed, 0

    def fetch(self, name: str, dest: Path) -> bool:
        self.asked += 1
        return self.has

    def trimmed(self, name: str) -> bool:
        return self.is_trimmed


@pytest.mark.parametrize(
    ("flag", "quorum_has", "trimmed", "archive_has", "expected_code", "archive_asked"),
    [
        (True, True, True, True, 0, False),  # the quorum answers: the store is never asked
        (True, False, True, True, 0, True),  # retention removed it from every node: the archive has it
        (True, False, True, False, 1, True),  # nobody has it
        (True, False, False, True, 1, False),  # not yet written (the writer is down): never the store
        (False, False, True, True, 1, False),  # no --archive: the quorum's answer stands
    ],
)
def test_the_archive_is_asked_only_for_a_segment_older_than_the_storage_nodes_hold(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flag: bool, quorum_has: bool, trimmed: bool,
    archive_has: bool, expected_code: int, archive_asked: bool,
) -> None:  # fmt: skip
    quorum = Quorum(quorum_has, trimmed)
    asked: list[str] = []

    def fetch_wal(src: object, name: str, dest: Path) -> bool:
        asked.append(name)
        return archive_has

    monkeypatch.setattr(backends, "storage_from_env", lambda env: quorum)
    monkeypatch.setattr(restore_source, "own_from_env", lambda env: object())
    monkeypatch.setattr(restore_source, "fetch_wal", fetch_wal)
    argv = (["--archive"] if flag else []) + [SEGMENT, str(tmp_path / "out"), str(tmp_path / "hold")]
    assert walfetch.main(argv) == expected_code
    assert quorum.asked == 1
    assert asked == ([SEGMENT] if archive_asked else [])


def test_a_store_that_fails_is_only_absent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def down(src: object, name: str, dest: Path) -> bool:
        raise OSError("connection refused")

    monkeypatch.setattr(backends, "storage_from_env", lambda env: Quorum(False))
    monkeypatch.setattr(restore_source, "own_from_env", lambda env: object())
    monkeypatch.setattr(restore_source, "fetch_wal", down)
    assert walfetch.main(["--archive", SEGMENT, str(tmp_path / "out")]) == 1


def test_trimmed_means_older_than_every_held_segment() -> None:
    held = ["000000020000000000000005", "000000020000000000000006.partial", "00000002.history"]
    assert client.trimmed("000000010000000000000004", held)
    assert not client.trimmed("000000020000000000000005", held)
    assert not client.trimmed("000000020000000000000007", held)  # not written yet
    assert not client.trimmed("00000001.history", held)
    assert not client.trimmed("000000010000000000000001", [])  # nothing held: nothing to compare with
