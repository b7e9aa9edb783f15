"""The operator's HTTP clients of one cluster's control endpoints: over HTTPS, verified by that cluster's CA.

Why one client per CA: each cluster has its own CA (``certs``), and a TLS context holds the CAs it trusts, so
a shared client would either trust every cluster's CA (a pod of one cluster could then answer for another's)
or none. Clients are kept per CA, so connections are pooled across passes as before; plain-HTTP pods
(``spec.tls.enabled: false``) go through the shared default client.
"""

from __future__ import annotations

import hashlib

import httpx
from aurora_api import https

_CLIENTS: dict[tuple[bytes, float], httpx.AsyncClient] = {}


def client(ca: bytes | None, timeout: float, default: httpx.AsyncClient) -> httpx.AsyncClient:
    """The client that verifies servers by ``ca`` (``default`` without one)."""
    if ca is None:
        return default
    key = (hashlib.sha256(ca).digest(), timeout)
    found = _CLIENTS.get(key)
    if found is None:
        found = _CLIENTS[key] = httpx.AsyncClient(timeout=timeout, verify=https.ca_context(ca))
    return found
