"""PostgreSQL's server certificate: the mounted one, installed where PostgreSQL accepts it, kept current.

Why a copy: PostgreSQL refuses a private key that its group or others may read unless root owns it, and a
Secret volume's mode and owner depend on the pod's ``fsGroup``; a copy the manager writes at 0600 is accepted
whatever the mount looks like. Why compare on every cycle: Kubernetes replaces a mounted Secret's files in
place when the Secret changes (the operator renews the certificate before it expires); the manager then
installs the new files and reloads PostgreSQL, which serves the new certificate to new connections without a
restart (connections already open keep the session they negotiated).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aurora_api.contract import TLS_CA, TLS_CERT, TLS_KEY
from aurora_storage import fsutil

from aurora_instance.settings import ConfigError, Settings


@dataclass(frozen=True)
class Installed:
    """Paths PostgreSQL reads (``ca`` None: the mounted Secret carries no CA bundle)."""

    cert: Path
    key: Path
    ca: Path | None


def _target(settings: Settings) -> Path:
    return settings.data_root / "tls"


def _wanted(settings: Settings) -> dict[str, bytes]:
    """The mounted files by name (empty without TLS); a half-mounted Secret is an error PostgreSQL would
    give less clearly."""
    if settings.tls_dir is None:
        return {}
    found = {n: (settings.tls_dir / n).read_bytes() for n in (TLS_CERT, TLS_KEY, TLS_CA)
             if (settings.tls_dir / n).exists()}  # fmt: skip
    missing = [n for n in (TLS_CERT, TLS_KEY) if n not in found]
    if missing:
        raise ConfigError(f"TLS Secret mounted at {settings.tls_dir} has no {', '.join(missing)}")
    return found


def installed(settings: Settings) -> Installed | None:
    """Where the installed files are (None: TLS off)."""
    if settings.tls_dir is None:
        return None
    d = _target(settings)
    return Installed(d / TLS_CERT, d / TLS_KEY, d / TLS_CA if (settings.tls_dir / TLS_CA).exists() else None)


def up_to_date(settings: Settings) -> bool:
    """The installed copies equal the mounted files (True without TLS)."""
    d = _target(settings)
    for name, body in _wanted(settings).items():
        path = d / name
        if not path.exists() or path.read_bytes() != body:
            return False
    return True


def install(settings: Settings) -> Installed | None:
    """Copy the mounted certificate, key and CA (0600, atomically each) for PostgreSQL and replication."""
    wanted = _wanted(settings)
    if not wanted:
        return None
    if up_to_date(settings):  # every start and reload renders the config: rewrite (and fsync) only a change
        return installed(settings)
    d = _target(settings)
    d.mkdir(mode=0o700, exist_ok=True)
    for name, body in wanted.items():
        fsutil.write_atomic(d / name, body)
        os.chmod(d / name, 0o600)
    return installed(settings)
