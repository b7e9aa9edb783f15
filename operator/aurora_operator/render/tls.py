"""The TLS objects of a cluster: its CA Secret, PostgreSQL's server certificate Secret, the published CA.

Why rendered apart from the certificates themselves (``certs``): issuing is random and reads the clock; the
objects that carry a certificate are plain functions of it, like every other manifest.
"""

from __future__ import annotations

from aurora_api.contract import TLS_CA, TLS_CERT, TLS_KEY
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..certs import Pair
from . import meta, names
from .meta import Manifest


def _secret(c: AuroraCluster, name: str, data: dict[str, bytes]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta.metadata(c, name),
        "type": "kubernetes.io/tls",
        "stringData": {k: v.decode() for k, v in data.items()},
    }


def ca_secret(c: AuroraCluster, ca: Pair) -> Manifest:
    return _secret(c, names.ca_secret(c), {TLS_CERT: ca.cert, TLS_KEY: ca.key})


def certificate_secret(c: AuroraCluster, name: str, pair: Pair, ca_cert: bytes) -> Manifest:
    """A certificate the pods serve (PostgreSQL's, or the control endpoints'), with the CA that signed it:
    readers and storage nodes verify the writer by it, control clients verify each other by it."""
    return _secret(c, name, {TLS_CERT: pair.cert, TLS_KEY: pair.key, TLS_CA: ca_cert})


def ca_config_map(c: AuroraCluster, ca_cert: bytes) -> Manifest:
    """What a client needs for ``sslmode=verify-full``: ``kubectl get cm <cluster>-ca -o
    jsonpath='{.data.ca\\.crt}'``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta.metadata(c, names.ca_config_map(c)),
        "data": {TLS_CA: ca_cert.decode()},
    }
