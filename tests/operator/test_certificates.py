"""Operator-issued TLS: a CA once, a server certificate naming every endpoint, renewed when it is due."""

from __future__ import annotations

import datetime

from aurora_api.contract import TLS_CA, TLS_CERT, TLS_KEY
from aurora_operator import certs
from aurora_operator.reconcile import certificates, checks
from aurora_operator.reconcile.observed import Observed
from aurora_operator.render import names
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

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
    assert [s["metadata"]["name"] for s, _ in first.secrets] == ["demo-ca", "demo-control-tls", "demo-tls"]
    held = stored(first)
    # the control endpoints' certificate: from the same CA, which comes with it (peers verify by it),
    control = x509.load_pem_x509_certificate(held["demo-control-tls"][TLS_CERT])
    control.verify_directly_issued_by(x509.load_pem_x509_certificate(held["demo-ca"][TLS_CERT]))
    assert held["demo-control-tls"][TLS_CA] == held["demo-ca"][TLS_CERT]
    assert TLS_KEY in held["demo-control-tls"]
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
    renewed = certificates.plan(c, observed, "cluster.local", (0,), late).secrets
    assert [s["metadata"]["name"] for s, _ in renewed] == ["demo-control-tls", "demo-tls"]
    assert all("less than a third" in why for _, why in renewed)
    # an instance beyond the named ordinals gets a certificate that names it (the CA stays),
    ((wider, why),) = certificates.plan(c, observed, "cluster.local", (0, 20), NOW).secrets
    assert "demo-instance-20" in why and wider["metadata"]["name"] == "demo-tls"
    # and one signed by another CA is replaced.
    other = certs.issue_ca("other", NOW)
    foreign = certs.issue_server(other, names.tls_dns_names(c, "cluster.local"), NOW)
    swapped = {**held, "demo-tls": {TLS_CERT: foreign.cert, TLS_KEY: foreign.key}}
    ((_, why),) = certificates.plan(c, Observed(certificates=swapped), "cluster.local", (0,), NOW).secrets
    assert "not signed by the cluster's CA" in why


def test_nothing_is_issued_with_tls_off_and_only_the_control_certificate_with_a_users_own() -> None:
    off = certificates.plan(
        factories.cluster({"tls": {"enabled": False}}), Observed(), "cluster.local", (0,), NOW
    )
    given = factories.cluster({"tls": {"secretName": "mine"}})
    assert off == certificates.Issued([], None)
    issued = certificates.plan(given, Observed(), "cluster.local", (0,), NOW)
    assert [s["metadata"]["name"] for s, _ in issued.secrets] == ["demo-ca", "demo-control-tls"]
    assert issued.published is None  # clients verify PostgreSQL by the user's CA, not this one
    assert names.tls_secret(given) == "mine"


def test_a_users_certificate_is_checked_as_postgresql_and_its_clients_will() -> None:
    ca = certs.issue_ca("user-ca", NOW)
    good = certs.issue_server(ca, ["db.example.com"], NOW)
    other = certs.issue_server(certs.issue_ca("another", NOW), ["db.example.com"], NOW)
    assert certs.defects(good.cert, good.key, ca.cert, NOW) == []
    assert certs.defects(good.cert, good.key, None, NOW) == []  # no CA given: nothing to check it by
    unreadable = ["tls.crt is not a PEM certificate (or one of its blocks is malformed)"]
    assert certs.defects(b"garbage", good.key, None, NOW) == unreadable
    # a good leaf followed by a broken block: said, not raised (a raise would stop the whole pass)
    broken = good.cert + b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
    assert certs.defects(broken, good.key, ca.cert, NOW) == unreadable
    assert certs.defects(good.cert, other.key, ca.cert, NOW) == ["tls.key is not the private key of tls.crt"]
    no_key = certs.defects(good.cert, b"", None, NOW)
    assert no_key == ["tls.key is missing, encrypted or not a PEM private key"]
    assert certs.defects(other.cert, other.key, ca.cert, NOW) == [
        "tls.crt was not signed by the ca.crt given with it (nor through the chain in tls.crt)"
    ]
    assert certs.defects(good.cert, good.key, b"not a cert", NOW) == ["ca.crt is not a PEM certificate"]
    later = NOW + datetime.timedelta(days=certs.SERVER_DAYS + 1)
    assert certs.defects(good.cert, good.key, ca.cert, later)[0].startswith("tls.crt expired at ")
    soon = NOW + datetime.timedelta(days=certs.SERVER_DAYS - 3)
    assert "is not renewed by the operator" in certs.defects(good.cert, good.key, ca.cert, soon)[0]


def test_a_chain_through_an_intermediate_in_tls_crt_reaches_the_given_ca() -> None:
    root = certs.issue_ca("root", NOW)
    # An intermediate: a CA certificate signed by the root (re-signed here with the root's key).
    inter_pair = certs.issue_ca("intermediate", NOW)
    inter = x509.load_pem_x509_certificate(inter_pair.cert)
    root_cert = x509.load_pem_x509_certificate(root.cert)
    root_key = serialization.load_pem_private_key(root.key, password=None)
    resigned = (
        x509.CertificateBuilder().subject_name(inter.subject).issuer_name(root_cert.subject)
        .public_key(inter.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(inter.not_valid_before_utc).not_valid_after(inter.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root_key, hashes.SHA256())  # type: ignore[arg-type]
    )  # fmt: skip
    inter_pem = resigned.public_bytes(serialization.Encoding.PEM)
    leaf = certs.issue_server(certs.Pair(inter_pem, inter_pair.key), ["db.example.com"], NOW)
    assert certs.defects(leaf.cert + inter_pem, leaf.key, root.cert, NOW) == []
    assert certs.defects(leaf.cert, leaf.key, root.cert, NOW) != []  # without the intermediate: no path


def test_a_bad_user_certificate_is_a_finding_naming_the_secret_and_the_defect() -> None:
    c = factories.cluster({"tls": {"secretName": "my-tls"}})
    ca = certs.issue_ca("user-ca", NOW)
    good = certs.issue_server(ca, ["db.example.com"], NOW)
    wrong_key = certs.issue_server(ca, ["db.example.com"], NOW).key
    ok = Observed(certificates={"my-tls": {TLS_CERT: good.cert, TLS_KEY: good.key, TLS_CA: ca.cert}})
    assert checks.certificate(c, ok, NOW) == []
    bad = Observed(certificates={"my-tls": {TLS_CERT: good.cert, TLS_KEY: wrong_key}})
    (finding,) = checks.certificate(c, bad, NOW)
    assert finding.condition == "CertificateValid" and finding.reason == "CertificateUnusable"
    said = "Secret 'my-tls' (spec.tls.secretName): tls.key is not the private key of tls.crt"
    assert said in finding.message
    assert wrong_key.decode() not in finding.message and "PRIVATE KEY" not in finding.message
    expiring = checks.certificate(c, ok, NOW + datetime.timedelta(days=certs.SERVER_DAYS - 3))
    assert [f.reason for f in expiring] == ["CertificateExpiring"]
    # the operator's own certificate is renewed, not checked here; a missing Secret is another finding.
    assert checks.certificate(factories.cluster(), bad, NOW) == []
    assert checks.certificate(c, Observed(), NOW) == []
