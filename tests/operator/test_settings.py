"""Operator settings come from QUORUMDB_OPERATOR_* variables with documented defaults."""

from __future__ import annotations

from aurora_operator.settings import Settings


def test_defaults_and_overrides() -> None:
    assert Settings.from_env({}) == Settings()
    s = Settings.from_env({"QUORUMDB_OPERATOR_IMAGE": "quorumdb:9", "QUORUMDB_OPERATOR_WATCH_NAMESPACE": "db",
                           "QUORUMDB_OPERATOR_RESYNC_SECONDS": "2.5", "QUORUMDB_OPERATOR_RUN_AS_USER": "26",
                           "UNRELATED": "x"})  # fmt: skip
    assert (s.image, s.watch_namespace, s.resync_seconds, s.run_as_user) == ("quorumdb:9", "db", 2.5, 26)
