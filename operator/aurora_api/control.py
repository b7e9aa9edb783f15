"""Who may change a cluster's roles and terms: holders of the cluster's control token.

Why a token: promote, demote, pause, resume, base backups and term changes decide who writes; before this,
any pod that could reach an instance manager or a storage node could fence the writer or start a second
promotion. The operator generates one random token per cluster into the Secret ``<cluster>-control`` and
projects it into the cluster's own pods (``$QUORUMDB_SECRETS_DIR/control/token``); the operator reads it
from the Secret. Requests that change anything carry it as ``Authorization: Bearer <token>``, compared in
constant time; reads (status, probes, metrics, WAL for repair) stay open to the cluster network. Shared by
every server and client so the rule is written once.

Rotation without downtime: the Secret then also holds the ``previous`` token for a while. The kubelet updates
each pod's copy of the Secret at its own time, so for a minute or two some pods know only the old token and
some know both: servers accept every token they have (re-read per request), and clients try theirs in order,
the next one only when a server answered 403 (a wrong token, never "unreachable").
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Callable, Sequence
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


def tokens(secrets_dir: Path) -> tuple[str, ...]:
    """The tokens a server accepts and a client tries now, in order: the current one and, during a rotation,
    the previous one. ``ValueError`` as ``read`` when there is no current one."""
    current = read(secrets_dir)
    try:
        previous = (secrets_dir / SecretsLayout.CONTROL / SecretsLayout.PREVIOUS).read_text().strip()
    except FileNotFoundError:
        previous = ""
    return (current, previous) if len(previous) >= 16 and previous != current else (current,)


Tokens = Callable[[], tuple[str, ...]]
"""What a long-running server or client asks for the tokens in force, at each request."""


def mounted(secrets_dir: Path) -> Tokens:
    """``tokens(secrets_dir)`` as of each call (a rotation changes the mounted Secret under a running
    process); should a read fail while the kubelet replaces the files, the last good answer. Raises
    ``ValueError`` at once when there is no token: a server must not start open."""
    last = tokens(secrets_dir)

    def now() -> tuple[str, ...]:
        nonlocal last
        with contextlib.suppress(ValueError, OSError):
            last = tokens(secrets_dir)
        return last

    return now


def fixed(*given: str) -> Tokens:
    """Tokens known once (a client given them by its caller, tests)."""
    kept = tuple(t for t in given if t)
    return lambda: kept


def headers(token: str) -> dict[str, str]:
    return {HEADER: f"{SCHEME} {token}"}


def attempts(tokens: Sequence[str]) -> list[dict[str, str]]:
    """The headers a client sends, in order, moving on only after a 403."""
    return [headers(t) for t in tokens if t]


def verdict(authorization: str | None, accepted: tuple[str, ...]) -> int | None:
    """None when ``authorization`` carries one of the ``accepted`` tokens; else the HTTP status to answer
    (401 none, 403 wrong). Every token is compared, in constant time each."""
    if not authorization:
        return 401
    scheme, _, given = authorization.partition(" ")
    offered = given.strip().encode()
    matches = [hmac.compare_digest(offered, t.encode()) for t in accepted if t]
    if scheme != SCHEME or not any(matches):
        return 403
    return None
