"""The server certificate's installation: a private copy PostgreSQL accepts, and a rotation noticed."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest
from aurora_instance import settings as settings_mod
from aurora_instance import tls
from aurora_instance.settings import ConfigError


def configured(tmp_path: Path, mounted: dict[str, str]) -> settings_mod.Settings:
    mount = tmp_path / "mount"
    mount.mkdir()
    for name, body in mounted.items():
        (mount / name).write_text(body)
    (tmp_path / "data").mkdir()
    env = {
        "QUORUMDB_ROLE": "writer",
        "QUORUMDB_CLUSTER_NAME": "c",
        "QUORUMDB_DATA_DIR": str(tmp_path / "data"),
    }
    base = settings_mod.from_env(env)
    return dataclasses.replace(base, tls_dir=mount)


def test_installs_a_private_copy_and_notices_a_rotation(tmp_path: Path) -> None:
    s = configured(tmp_path, {"tls.crt": "CERT1", "tls.key": "KEY1", "ca.crt": "CA"})
    assert not tls.up_to_date(s)
    got = tls.install(s)
    assert got is not None and got.ca is not None
    assert got.key.read_text() == "KEY1" and stat.S_IMODE(got.key.stat().st_mode) == 0o600
    assert tls.up_to_date(s)
    # Kubernetes replaces the mounted files when the Secret changes: the copy is then out of date.
    assert s.tls_dir is not None
    (s.tls_dir / "tls.crt").write_text("CERT2")
    assert not tls.up_to_date(s)
    tls.install(s)
    assert got.cert.read_text() == "CERT2" and tls.up_to_date(s)


def test_without_tls_nothing_is_installed_and_a_half_mounted_secret_is_an_error(tmp_path: Path) -> None:
    s = configured(tmp_path, {"tls.crt": "CERT"})
    assert tls.install(dataclasses.replace(s, tls_dir=None)) is None
    assert tls.up_to_date(dataclasses.replace(s, tls_dir=None))
    with pytest.raises(ConfigError, match=r"no tls\.key"):
        tls.install(s)
