"""Token login: PostgreSQL asks this program (through PAM) whether a ServiceAccount token may log in.

Why PAM and a program: PostgreSQL already knows how to take a password over TLS and hand it to PAM
(``pg_hba``: ``hostssl ... pam pamservice=quorumdb-token``), and the project's PAM module
(``storage-engine/pam``; ``pam_exec`` would cut the token to 512 bytes) runs this program with the role in
``PAM_USER`` and the whole token on standard input. It asks the API server to review the token for the
cluster's audience (a TokenReview: signature, expiry, audience, and that the pod or Secret it is bound to
still exists), then checks the ServiceAccount is mapped to the role in the mounted ``token-login.json``.
Exit status 0 admits the client; anything else refuses it ("PAM authentication failed for user ...").

It runs once per login in a process started with an empty environment, so it imports only the standard
library and takes its paths from ``aurora_api.contract``. It must never print or log the token.
"""

from __future__ import annotations

import json
import os
import ssl
import string
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aurora_api import contract

API_SERVER = "https://kubernetes.default.svc"
REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
TIMEOUT_SECONDS = 5.0
MAX_TOKEN_BYTES = 16 * 1024
TOKEN_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_.=")
"""A ServiceAccount token is a JWT: three base64url parts joined by dots."""


@dataclass(frozen=True)
class Config:
    audience: str
    roles: Mapping[str, frozenset[str]]
    """Role -> usernames (``system:serviceaccount:<namespace>:<name>``) allowed to log in as it."""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    subject: str = ""


def parse_config(text: str) -> Config:
    """The mounted ``token-login.json``; ValueError when it is not what the operator renders."""
    doc = json.loads(text)
    audience, roles = doc.get("audience"), doc.get("roles")
    if not isinstance(audience, str) or not audience or not isinstance(roles, dict):
        raise ValueError("token-login.json needs an audience and a roles map")
    mapped: dict[str, frozenset[str]] = {}
    for role, users in roles.items():
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            raise ValueError(f"token-login.json: role {role!r} needs a list of usernames")
        mapped[role] = frozenset(users)
    return Config(audience, mapped)


def malformed(token: str) -> str | None:
    """Why ``token`` cannot be a ServiceAccount token (checked before anything is sent anywhere)."""
    if not token:
        return "empty token"
    if len(token) > MAX_TOKEN_BYTES:
        return f"token longer than {MAX_TOKEN_BYTES} bytes"
    if token.count(".") != 2 or not set(token) <= TOKEN_CHARACTERS:
        return "not a JSON Web Token"
    return None


def review_request(token: str, audience: str) -> dict[str, object]:
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": [audience]},
    }


def verdict(config: Config, role: str, review: Mapping[str, object]) -> Verdict:
    """Decide from the API server's TokenReview answer (its ``status``)."""
    allowed_users = config.roles.get(role)
    if allowed_users is None:
        return Verdict(False, f"role {role!r} does not log in with tokens")
    status = review.get("status")
    if not isinstance(status, dict):
        return Verdict(False, "the API server's review has no status")
    if not status.get("authenticated"):
        error = status.get("error") or "not authenticated"
        return Verdict(False, f"token rejected by the API server: {error}")
    audiences = status.get("audiences")
    if not isinstance(audiences, list) or config.audience not in audiences:
        return Verdict(False, f"token not issued for audience {config.audience!r}")
    user = status.get("user")
    subject = user.get("username", "") if isinstance(user, dict) else ""
    if not isinstance(subject, str) or subject not in allowed_users:
        return Verdict(False, f"{subject or 'the token'} is not mapped to role {role!r}", str(subject))
    return Verdict(True, f"token of {subject} accepted", subject)


# --- I/O: only below this line ------------------------------------------------------------------------


def _review(token: str, audience: str, account_dir: Path) -> Mapping[str, object]:
    own_token = (account_dir / "token").read_text().strip()
    context = ssl.create_default_context(cafile=str(account_dir / "ca.crt"))
    request = urllib.request.Request(
        API_SERVER + REVIEW_PATH,
        data=json.dumps(review_request(token, audience)).encode(),
        headers={"Authorization": f"Bearer {own_token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=context) as answer:
        doc = json.loads(answer.read())
    return doc if isinstance(doc, dict) else {}


def check(role: str, token: str, config_dir: Path, account_dir: Path) -> Verdict:
    problem = malformed(token)
    if problem is not None:
        return Verdict(False, problem)
    try:
        config = parse_config((config_dir / contract.CONFIG_TOKEN_LOGIN).read_text())
    except (OSError, ValueError) as err:
        return Verdict(False, f"token login is not configured: {err}")
    if role not in config.roles:
        return Verdict(False, f"role {role!r} does not log in with tokens")
    try:
        review = _review(token, config.audience, account_dir)
    except urllib.error.HTTPError as err:  # e.g. 403: this instance may not create TokenReviews
        return Verdict(False, f"the API server refused the review: HTTP {err.code}")
    except (OSError, ValueError) as err:
        return Verdict(False, f"the API server did not answer the review: {err}")
    return verdict(config, role, review)


def main() -> int:
    role = os.environ.get("PAM_USER", "")
    raw = sys.stdin.buffer.read(MAX_TOKEN_BYTES + 2)
    token = raw.decode("ascii", errors="replace").strip()
    result = check(role, token, Path(contract.PATH_CONFIG_DIR), Path(contract.PATH_KUBE_ACCOUNT_DIR))
    client = os.environ.get("PAM_RHOST", "?")
    word = "accepted" if result.allowed else "refused"
    # Standard error is PostgreSQL's (the PAM module keeps it): the verdict lands in the server log.
    print(f"quorumdb-token-login: {word} login as {role!r} from {client}: {result.reason}", file=sys.stderr)
    return 0 if result.allowed else 1


if __name__ == "__main__":
    sys.exit(main())
