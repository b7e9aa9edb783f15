"""Which TLS objects a pass must write: the cluster CA once, the certificates when they are due.

Two certificates from the cluster's CA: PostgreSQL's (and the Data API's), naming every endpoint, unless the
user gives their own (``spec.tls.secretName``); and the control certificate of the instance managers', storage
nodes' HTTP endpoints, always the operator's, as only the cluster's own pods and the operator ever call them
(by pod address: the chain to this cluster's CA is what they check, ``aurora_api.https``).

Why here and not in the renderers: whether a certificate is due depends on the one stored (its expiry, its
names, its signer), which only the observation has. The decision is a function of what was observed and
``now``; only the issuing itself (``certs``) is random, like a generated password.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from aurora_api.contract import TLS_CERT, TLS_KEY
from aurora_api.v1alpha1.cluster import AuroraCluster

from .. import certs
from ..render import names, tls
from ..render.meta import Manifest
from .observed import Observed


@dataclass(frozen=True)
class Issued:
    """Secrets to write (server-side apply replaces a renewed one) and the published CA to keep applied."""

    secrets: list[tuple[Manifest, str]]
    """(Secret, why it is written) in order: the CA before the certificate it signs."""
    published: Manifest | None


def plan(
    c: AuroraCluster, observed: Observed, cluster_domain: str, ordinals: Iterable[int], now: datetime.datetime
) -> Issued:
    """Nothing when TLS is off; no PostgreSQL certificate (and no published CA) when the user gave theirs."""
    if not c.spec.tls.enabled:
        return Issued([], None)
    written: list[tuple[Manifest, str]] = []
    stored_ca = observed.certificates.get(names.ca_secret(c), {})
    if TLS_CERT in stored_ca and TLS_KEY in stored_ca:
        ca = certs.Pair(stored_ca[TLS_CERT], stored_ca[TLS_KEY])
    else:
        ca = certs.issue_ca(f"{c.metadata.name}.{c.metadata.namespace} QuorumDB CA", now)
        written.append((tls.ca_secret(c, ca), "the cluster's certificate authority, issued"))
    control = [names.control_tls_name(c)]
    what = "the control endpoints' certificate"
    written += _due(c, observed, names.control_tls_secret(c), what, ca, control, now)
    if c.spec.tls.secret_name:
        return Issued(written, None)
    dns = names.tls_dns_names(c, cluster_domain, ordinals)
    written += _due(c, observed, names.tls_secret(c), "PostgreSQL's certificate", ca, dns, now)
    return Issued(written, tls.ca_config_map(c, ca.cert))


def _due(
    c: AuroraCluster, observed: Observed, secret: str, what: str, ca: certs.Pair, dns: list[str],
    now: datetime.datetime,
) -> list[tuple[Manifest, str]]:
    """The certificate Secret ``secret`` issued again, with why, when the stored one is due (else none)."""
    why = certs.renewal_reason(observed.certificates.get(secret, {}).get(TLS_CERT), ca.cert, dns, now)
    if why is None:
        return []
    pair = certs.issue_server(ca, dns, now)
    until = certs.not_after(pair.cert).isoformat()
    return [(tls.certificate_secret(c, secret, pair, ca.cert), f"{what}, issued until {until}: {why}")]
