"""Who may change a cluster's roles and terms: holders of the cluster's control token.

Why a token: promote, demote, pause, resume, base backups and term changes decide who writes; before this,
any pod that could reach an instance manager or a storage node could fence the writer or start a second
promotion. The operator generates one random token per cluster into the Secret ``<cluster>-control`` and
projects it into the cluster's own pods (``$QUORUMDB_SECRETS_DIR/control/token``); the operator reads it
from the Secret. Requests that change anything carry it as ``Authorization: Bearer <token>``, compared in
constant time; reads (status, probes, metrics, WAL for repair) stay open to the cluster network. Shared by
every server and client so the rule is written once.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from aurora_api.contract import SecretsLayout

SCHEME = "Bearer"
HEADER = "Authorization"


def token_file(secrets_dir: Path) -> Path:
    return secrets_dir / SecretsLayout.CONTROL / SecretsLayout.TOKEN


def read(secrets_dir: Path) -> str:
    """The token; ``ValueError`` when the file is missing or empty (a server must not start open)."""
    path = token_file(secrets_dir)
    try:
        token = path.read_text().strip()
    except FileNotFoundError as err:
        raise ValueError(f"no control token at {path}: control requests cannot be authenticated") from err
    if len(token) < 16:
        raise ValueError(f"the control token at {path} is shorter than 16 characters")
    return token


def headers(token: str) -> dict[str, str]:
    return {HEADER: f"{SCHEME} {token}"}


def verdict(authorization: str | None, token: str) -> int | None:
    """None when ``authorization`` carries ``token``; else the HTTP status to answer (401 none, 403 wrong)."""
    if not authorization:
        return 401
    scheme, _, given = authorization.partition(" ")
    if scheme != SCHEME or not hmac.compare_digest(given.strip().encode(), token.encode()):
        return 403
    return None
