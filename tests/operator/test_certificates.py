"""Operator-issued TLS: a CA once, a server certificate naming every endpoint, renewed when it is due."""

from __future__ import annotations

import datetime

from aurora_api.contract import TLS_CA, TLS_CERT, TLS_KEY
from aurora_operator import certs
from aurora_operator.reconcile import certificates
from aurora_operator.reconcile.observed import Observed
from aurora_operator.render import names
from cryptography import x509

from tests.operator import factories

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)


def stored(issued: certificates.Issued) -> dict[str, dict[str, bytes]]:
    """What the API server would hold after the pass wrote ``issued``."""
    return {
        secret["metadata"]["name"]: {k: v.encode() for k, v in secret["stringData"].items()}
        for secret, _ in issued.secrets
    }


def test_first_pass_issues_a_ca_and_a_certificate_naming_every_endpoint_then_nothing() -> None:
    c = factories.cluster()
    first = certificates.plan(c, Observed(), "cluster.local", (0, 1), NOW)
    assert [s["metadata"]["name"] for s, _ in first.secrets] == ["demo-ca", "demo-tls"]
    held = stored(first)
    server = x509.load_pem_x509_certificate(held["demo-tls"][TLS_CERT])
    ca = x509.load_pem_x509_certificate(held["demo-ca"][TLS_CERT])
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(sans.get_values_for_type(x509.DNSName))
    assert {"demo.db.svc", "demo-ro.db.svc.cluster.local", "demo-instance-15.db.svc"} <= dns
    # the pod mounts the CA with the certificate (readers verify the writer), and it is published alone.
    assert held["demo-tls"][TLS_CA] == held["demo-ca"][TLS_CERT]
    assert first.published is not None and first.published["data"] == {
        TLS_CA: held["demo-ca"][TLS_CERT].decode()
    }
    assert TLS_KEY not in first.published["data"]
    # A later pass over what was stored issues nothing (an operator restart changes nothing).
    again = certificates.plan(c, Observed(certificates=held), "cluster.local", (0, 1), NOW)
    assert again.secrets == [] and again.published == first.published


def test_the_certificate_is_renewed_when_a_third_of_its_life_is_left_or_it_misses_a_name() -> None:
    c = factories.cluster()
    held = stored(certificates.plan(c, Observed(), "cluster.local", (0,), NOW))
    observed = Observed(certificates=held)
    late = NOW + datetime.timedelta(days=certs.SERVER_DAYS * 2 / 3 + 1)
    early = NOW + datetime.timedelta(days=certs.SERVER_DAYS * 2 / 3 - 1)
    assert certificates.plan(c, observed, "cluster.local", (0,), early).secrets == []
    ((renewed, why),) = certificates.plan(c, observed, "cluster.local", (0,), late).secrets
    assert renewed["metadata"]["name"] == "demo-tls" and "less than a third" in why
    # an instance beyond the named ordinals gets a certificate that names it (the CA stays),
    ((wider, why),) = certificates.plan(c, observed, "cluster.local", (0, 20), NOW).secrets
    assert "demo-instance-20" in why and wider["metadata"]["name"] == "demo-tls"
    # and one signed by another CA is replaced.
    other = certs.issue_ca("other", NOW)
    foreign = certs.issue_server(other, names.tls_dns_names(c, "cluster.local"), NOW)
    swapped = {**held, "demo-tls": {TLS_CERT: foreign.cert, TLS_KEY: foreign.key}}
    ((_, why),) = certificates.plan(c, Observed(certificates=swapped), "cluster.local", (0,), NOW).secrets
    assert "not signed by the cluster's CA" in why


def test_nothing_is_issued_with_tls_off_or_a_certificate_of_the_users() -> None:
    off = certificates.plan(
        factories.cluster({"tls": {"enabled": False}}), Observed(), "cluster.local", (0,), NOW
    )
    given = factories.cluster({"tls": {"secretName": "mine"}})
    assert off == certificates.Issued([], None)
    assert certificates.plan(given, Observed(), "cluster.local", (0,), NOW) == certificates.Issued([], None)
    assert names.tls_secret(given) == "mine"
