"""Database accounts from the mounted Secrets, validated before anything is written.

Why: a missing key or a password with a newline would otherwise surface as an opaque initdb or libpq error,
or worse, a cluster whose replication user cannot log in. Layout: ``contract.SecretsLayout``. It must not log
passwords or write them anywhere except the 0600 password file ``passfile`` renders.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

from aurora_api import contract

from aurora_instance.settings import ConfigError

L = contract.SecretsLayout
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""A plain lower-case PostgreSQL identifier: safe unquoted in SQL and in pg_hba.conf."""


@dataclass(frozen=True)
class Account:
    username: str
    password: str = ""


@dataclass(frozen=True)
class Credentials:
    superuser: Account
    replication: Account
    app: Account
    app_database: str


def _read(base: Path, account: str, key: str) -> str:
    path = base / account / key
    try:
        value = path.read_text()
    except FileNotFoundError as err:
        raise ConfigError(f"secret {account}/{key} missing: {path} does not exist") from err
    except OSError as err:
        raise ConfigError(f"secret {account}/{key} unreadable at {path}: {err}") from err
    value = value[:-1] if value.endswith("\n") else value
    if not value:
        raise ConfigError(f"secret {account}/{key} at {path} is empty")
    if any(c in value for c in "\n\r\0"):
        raise ConfigError(f"secret {account}/{key} at {path} contains a newline or NUL")
    return value


def _account(base: Path, account: str) -> Account:
    username = _read(base, account, L.USERNAME)
    if not NAME_RE.match(username):
        raise ConfigError(f"secret {account}/{L.USERNAME} {username!r} is not a plain lower-case identifier")
    password = _read(base, account, L.PASSWORD)
    if len(password) < 8:
        raise ConfigError(f"secret {account}/{L.PASSWORD} is shorter than 8 characters")
    return Account(username, password)


def load(base: Path) -> Credentials:
    """Read and validate all three accounts; ConfigError says which file is wrong and why."""
    if not base.is_dir():
        raise ConfigError(f"secrets directory {base} does not exist (is the Secret mounted?)")
    creds = Credentials(
        superuser=_account(base, L.SUPERUSER),
        replication=_account(base, L.REPLICATION),
        app=_account(base, L.APP),
        app_database=_read(base, L.APP, L.DATABASE),
    )
    names = [creds.superuser.username, creds.replication.username, creds.app.username]
    if len(set(names)) != 3:
        raise ConfigError(f"superuser, replication and app accounts must differ, got {names}")
    if not NAME_RE.match(creds.app_database):
        raise ConfigError(f"secret app/{L.DATABASE} {creds.app_database!r} is not a plain identifier")
    return creds


def accounts(creds: Credentials) -> tuple[Account, ...]:
    """The accounts whose passwords the writer keeps equal to the mounted Secrets."""
    return (creds.superuser, creds.replication, creds.app)


def scram_matches(verifier: str, password: str) -> bool:
    """Whether ``verifier`` (``pg_authid.rolpassword``: ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:
    <ServerKey>``, RFC 5802/7677) was made from ``password``. Why here: the writer compares the mounted
    password with what PostgreSQL stores, to apply a rotated one exactly once and after any restart, without
    keeping the password anywhere else. The stored key is H(HMAC(PBKDF2(password, salt, i), "Client Key")).
    Passwords are taken as UTF-8 without SASLprep (identical for the ASCII passwords the operator
    generates; a non-ASCII one may be applied again, which is harmless). Anything but SCRAM: False."""
    try:
        method, rest = verifier.split("$", 1)
        params, keys = rest.split("$", 1)
        iterations, salt = params.split(":", 1)
        stored_key = keys.split(":", 1)[0]
        if method != "SCRAM-SHA-256":
            return False
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        return hmac.compare_digest(hashlib.sha256(client_key).digest(), base64.b64decode(stored_key))
    except (ValueError, binascii.Error):
        return False
