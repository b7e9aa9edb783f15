"""HTTPS for the cluster's HTTP servers and their clients: one rule for every process.

Servers (the Data API with the cluster's certificate; the instance managers, storage nodes and proxy with
the control certificate) serve the mounted pair and follow it when Kubernetes replaces it (``load``,
``Served.follow``). Control clients reach servers by pod address, which no certificate names: they check
that the server's certificate chains to the cluster's own CA (``client_context``) and not the name. Since
the CA is issued per cluster and signs nothing but that cluster's certificates, the chain is what
identifies a peer.

Why swap contexts rather than reload one: the operator renews the certificate before it expires and
Kubernetes then swaps the mounted Secret's files. Each change is loaded into a *new* ``SSLContext``, and the
context the server listens with hands every handshake to the newest one (``sni_callback``, called for every
handshake, with or without SNI): new connections get the new certificate, open ones keep theirs, nothing
restarts. A pair that does not load (read half-way through a swap, malformed, a key that is not the
certificate's) never touches a context in use: it is logged, the previous one stays, the next pass retries.
It must not decide whether TLS is on: the environment the operator renders does.
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aurora_api.contract import TLS_CA, TLS_CERT, TLS_KEY, Env

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

    def follow(self) -> None:
        """Refresh every ``FOLLOW_SECONDS`` from a daemon thread for the life of the process: a new context is
        built aside and then put in place by one assignment, which handshakes read atomically."""
        threading.Thread(target=self._follow, name="certificate", daemon=True).start()

    def _follow(self) -> None:
        while True:
            time.sleep(FOLLOW_SECONDS)
            self.refresh()

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


def control_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """Where the control certificate is mounted; None: the control endpoints speak plain HTTP."""
    found = (os.environ if env is None else env).get(Env.CONTROL_TLS_DIR)
    return Path(found) if found else None


def control_server(env: Mapping[str, str] | None = None) -> Served | None:
    """The control certificate to serve (``Served.front`` as the listener's context); None: plain HTTP."""
    found = control_dir(env)
    return load(found) if found is not None else None


def scheme(env: Mapping[str, str] | None = None) -> str:
    return "https" if control_dir(env) is not None else "http"


def url(hostport: str, env: Mapping[str, str] | None = None) -> str:
    """``host:port`` as a control URL (kept as given when it has a scheme)."""
    return hostport if hostport.startswith(("http://", "https://")) else f"{scheme(env)}://{hostport}"


@functools.cache
def _verifying(ca: str | bytes) -> ssl.SSLContext:
    context = ssl.create_default_context(
        **({"cafile": ca} if isinstance(ca, str) else {"cadata": ca.decode()})  # type: ignore[arg-type]
    )
    context.check_hostname = False  # reached by pod address: the cluster's own CA is the identity
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def client_context(env: Mapping[str, str] | None = None) -> ssl.SSLContext | None:
    """For this process's control clients: verify servers by the cluster's CA (None: plain HTTP)."""
    found = control_dir(env)
    return _verifying(str(found / TLS_CA)) if found is not None else None


def ca_context(ca_pem: bytes) -> ssl.SSLContext:
    """The same check from a CA held in memory (the operator, which reads it from the CA's Secret)."""
    return _verifying(ca_pem)
