"""The cluster's own certificate authority and PostgreSQL's server certificate, issued by the operator.

Why the operator issues them: TLS is on by default, so it cannot depend on cert-manager being installed; a
CA per cluster means a client that trusts it (the published ``<cluster>-ca`` ConfigMap) trusts exactly
that cluster's endpoints. Why ECDSA P-256: a key is generated in a millisecond inside a reconcile pass, and
every libpq and OpenSSL accepts it.

Renewal (``renewal_reason``): a server certificate lives ``SERVER_DAYS`` and is re-issued once less than a
third of that is left, when its names no longer cover the cluster's endpoints, or when another CA signed it.
The instance managers install the new one and reload PostgreSQL (``aurora_instance.tls``): new connections
get it, open ones keep theirs, nothing restarts. The CA itself lives ``CA_DAYS`` and is not rotated here.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 90
BACKDATE = datetime.timedelta(minutes=5)
"""Certificates start a little in the past, so a client whose clock is slightly behind accepts them."""


CA_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
    decipher_only=False,
)  # fmt: skip


CA_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
    decipher_only=False,
)  # fmt: skip


@dataclass(frozen=True)
class Pair:
    """A PEM certificate and its PEM (PKCS#8, unencrypted) private key."""

    cert: bytes
    key: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "QuorumDB"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def issue_ca(common_name: str, now: datetime.datetime) -> Pair:
    key = _key()
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def issue_server(ca: Pair, dns_names: Sequence[str], now: datetime.datetime) -> Pair:
    """A server certificate for ``dns_names`` (the first is its common name), signed by ``ca``."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the cluster CA's key is not an EC key")
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(dns_names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def not_after(cert_pem: bytes) -> datetime.datetime:
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc


def renewal_reason(
    cert_pem: bytes | None, ca_cert_pem: bytes, dns_names: Sequence[str], now: datetime.datetime
) -> str | None:
    """Why the server certificate must be issued again (None: it is good)."""
    if cert_pem is None:
        return "none issued yet"
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        ca = x509.load_pem_x509_certificate(ca_cert_pem)
    except ValueError as err:
        return f"the stored certificate is unreadable ({err})"
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "it was not signed by the cluster's CA"
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now >= end - (end - start) / 3:
        return f"it expires at {end.isoformat()} (less than a third of its life left)"
    try:
        covered = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                      .get_values_for_type(x509.DNSName))  # fmt: skip
    except x509.ExtensionNotFound:
        covered = set()
    missing = [n for n in dns_names if n not in covered]
    if missing:
        return f"it does not name {', '.join(missing[:3])}" + (" and others" if len(missing) > 3 else "")
    return None


EXPIRY_WARNING = datetime.timedelta(days=14)
"""A certificate the operator does not renew (``spec.tls.secretName``) is flagged this long before its end."""


def defects(
    cert_pem: bytes | None, key_pem: bytes | None, ca_pem: bytes | None, now: datetime.datetime
) -> list[str]:
    """What would make a user's server certificate fail (empty: usable): unreadable, a key that is not its
    own, outside its validity (or within ``EXPIRY_WARNING`` of its end), not signed by the ``ca.crt`` given
    with it. PostgreSQL would refuse to start with the first ones, and clients to verify the last; saying so
    before a pod restarts on it is the point."""
    if not cert_pem:
        return ["tls.crt is missing"]
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)  # the leaf, then any intermediates
    except ValueError:
        return ["tls.crt is not a PEM certificate (or one of its blocks is malformed)"]
    cert = chain[0]
    found = []
    try:
        key = serialization.load_pem_private_key(key_pem or b"", password=None)
    except (ValueError, TypeError):
        found.append("tls.key is missing, encrypted or not a PEM private key")
    else:
        if key.public_key() != cert.public_key():
            found.append("tls.key is not the private key of tls.crt")
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now < start:
        found.append(f"tls.crt is not valid before {start.isoformat()}")
    elif now >= end:
        found.append(f"tls.crt expired at {end.isoformat()}")
    elif now >= end - EXPIRY_WARNING:
        found.append(f"tls.crt expires at {end.isoformat()} and is not renewed by the operator")
    if ca_pem:
        try:
            ca = x509.load_pem_x509_certificate(ca_pem)
        except ValueError:
            found.append("ca.crt is not a PEM certificate")
        else:
            if not _chains_to(chain, ca):
                found.append(
                    "tls.crt was not signed by the ca.crt given with it (nor through the chain in tls.crt)"
                )
    return found


def _signed(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _chains_to(chain: Sequence[x509.Certificate], ca: x509.Certificate) -> bool:
    """The leaf (first) reaches ``ca`` through the intermediates that follow it in the same file."""
    current = chain[0]
    for _ in range(len(chain)):
        if _signed(current, ca):
            return True
        parent = next((c for c in chain[1:] if c != current and _signed(current, c)), None)
        if parent is None:
            return False
        current = parent
    return False
