"""The Data API's HTTPS: the mounted certificate, served, and followed when Kubernetes replaces it.

Why swap contexts rather than reload one: the operator renews the certificate before it expires and
Kubernetes then swaps the mounted Secret's files. Each change is loaded into a *new* ``SSLContext``, and the
context the server listens with hands every handshake to the newest one (``sni_callback``, called for every
handshake, with or without SNI): new connections get the new certificate, open ones keep theirs, nothing
restarts. A pair that does not load (read half-way through a swap, malformed, a key that is not the
certificate's) never touches a context in use: it is logged, the previous one stays, the next pass retries.
It must not decide whether TLS is on (the configuration does).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from aurora_api.contract import TLS_CERT, TLS_KEY

log = logging.getLogger(__name__)
FOLLOW_SECONDS = 10.0


def _context(directory: Path) -> tuple[ssl.SSLContext, tuple[bytes, bytes]]:
    """A server context (TLS 1.2 or later) holding the pair in ``directory``, and the bytes it holds."""
    found = (directory / TLS_CERT).read_bytes(), (directory / TLS_KEY).read_bytes()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(directory / TLS_CERT, directory / TLS_KEY)
    if (directory / TLS_CERT).read_bytes() != found[0]:  # swapped while loading: load again next pass
        raise ssl.SSLError("the certificate changed while it was loaded")
    return context, found


@dataclass
class Served:
    """The context the server listens with (``front``) and the one handshakes use now (``current``)."""

    directory: Path
    current: ssl.SSLContext
    loaded: tuple[bytes, bytes]
    front: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        self.front, _ = _context(self.directory)
        self.front.sni_callback = self._choose

    def _choose(self, conn: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        conn.context = self.current

    def refresh(self) -> bool:
        """Load the mounted pair if it changed; True when new handshakes get a new certificate."""
        try:
            mounted = (self.directory / TLS_CERT).read_bytes(), (self.directory / TLS_KEY).read_bytes()
            if mounted == self.loaded:
                return False
            self.current, self.loaded = _context(self.directory)
        except (OSError, ssl.SSLError) as err:
            log.error("certificate in %s not loaded (%s); the previous one is served", self.directory, err)
            return False
        log.info("serving the renewed certificate from %s", self.directory)
        return True


def load(directory: Path) -> Served:
    """The pair in ``directory``, ready to serve; raises when it does not load, which at start-up is a
    configuration error the pod's status should show."""
    return Served(directory, *_context(directory))


async def follow(served: Served, period: float | None = None) -> None:
    """Refresh every ``period`` (two small files; a load takes about a millisecond)."""
    while True:
        await asyncio.sleep(period or FOLLOW_SECONDS)
        served.refresh()
