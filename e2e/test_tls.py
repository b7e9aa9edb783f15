"""TLS on the kind test bed (on by default): a client verifies the cluster and reader endpoints with the CA
the cluster publishes (``sslmode=verify-full``), fails with another CA, and is refused without encryption;
a renewed certificate is served to new connections without a restart while an audited workload (with
pgbench) keeps committing, and nothing acknowledged is lost.

Real PostgreSQL, real certificates issued by the operator, a real client pod: ``PROBE`` connects with
psycopg (libpq) as applications do, and ``SERVED`` reads the certificate a server presents after
PostgreSQL's SSLRequest, to tell which certificate is served.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import time
from typing import Any

import aurora
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from kube import Kubectl, wait_for
from workload import IMAGE, PYTHON, Workload

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("operator")]
NAME = "demo"
CLIENT = "tls-client"
CA_FILE = "/etc/cluster-ca/ca.crt"
PROBE = """
import json, os, sys, psycopg
host, mode, rootcert = sys.argv[1], sys.argv[2], sys.argv[3]
if rootcert.startswith("-----"):
    with open("/tmp/other-ca.crt", "w") as f:
        f.write(rootcert)
    rootcert = "/tmp/other-ca.crt"
try:
    with psycopg.connect(host=host, sslmode=mode, sslrootcert=rootcert, connect_timeout=10) as conn:
        ssl = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
        print(json.dumps({"ok": True, "ssl": ssl}))
except psycopg.OperationalError as err:
    print(json.dumps({"ok": False, "error": str(err)[:600]}))
"""
STARTED = "SELECT pg_postmaster_start_time()"
SERVED = """
import hashlib, socket, ssl, struct, sys
host, cafile = sys.argv[1], sys.argv[2]
with socket.create_connection((host, 5432), timeout=10) as s:
    s.sendall(struct.pack("!ii", 8, 80877103))
    assert s.recv(1) == b"S", "the server declined TLS"
    with ssl.create_default_context(cafile=cafile).wrap_socket(s, server_hostname=host) as t:
        print(hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest())
"""


def client_pod() -> dict[str, Any]:
    """A pod outside the cluster's own, with the app account's credentials and the published CA."""
    env = [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": f"{NAME}-app", "key": key}}}
        for var, key in (("PGUSER", "username"), ("PGPASSWORD", "password"), ("PGDATABASE", "dbname"))
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": CLIENT},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 999,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "client", "image": IMAGE, "imagePullPolicy": "IfNotPresent", "env": env,
                "args": [PYTHON, "-c", "import time; time.sleep(10**9)"],
                "volumeMounts": [{"name": "ca", "mountPath": "/etc/cluster-ca", "readOnly": True}],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }],
            "volumes": [{"name": "ca", "configMap": {"name": f"{NAME}-ca"}}],
        },
    }  # fmt: skip


def connect(ns: Kubectl, host: str, mode: str, rootcert: str = CA_FILE) -> dict[str, Any]:
    out = ns.run("exec", CLIENT, "--", PYTHON, "-c", PROBE, host, mode, rootcert)
    answer: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return answer


def served(ns: Kubectl, host: str) -> str:
    """SHA-256 of the certificate ``host`` presents now (verified with the published CA)."""
    return ns.run("exec", CLIENT, "--", PYTHON, "-c", SERVED, host, CA_FILE).strip().splitlines()[-1]


def started_at(ns: Kubectl, instance: str) -> str:
    """When the instance's PostgreSQL started (a reload keeps it; a restart changes it)."""
    pod = aurora.instance_pod(instance)
    return ns.run("exec", "-i", pod, "--", "psql", "-X", "-At", "-h", aurora.SOCKET_DIR, "-U", "postgres",
                  "-d", "postgres", "-f", "-", stdin=STARTED).strip()  # fmt: skip


def issued(ns: Kubectl) -> str:
    """SHA-256 of the certificate in the operator-issued Secret."""
    pem = base64.b64decode(ns.get_json("secret", f"{NAME}-tls")["data"]["tls.crt"])
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def another_ca() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "not the cluster's CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_tls_verify_full_with_the_published_ca_another_ca_fails_plaintext_refused(namespace: Kubectl) -> None:
    # Given a cluster with default settings (one reader) and a client pod holding the CA it publishes,
    namespace.apply([aurora.demo(readers=1)])
    aurora.wait_ready(namespace, NAME)
    namespace.apply([client_pod()])
    namespace.run("wait", "--for=condition=Ready", f"pod/{CLIENT}", "--timeout=120s")
    ns = namespace.namespace
    # then verify-full succeeds on the cluster and reader endpoints, by every name a client may use,
    for host in (NAME, f"{NAME}.{ns}.svc", f"{NAME}-ro.{ns}.svc.cluster.local", f"{NAME}-instance-0.{ns}"):
        answer = connect(namespace, host, "verify-full")
        assert answer == {"ok": True, "ssl": True}, (host, answer)
    # fails when the client trusts another CA,
    other = connect(namespace, NAME, "verify-full", another_ca())
    assert not other["ok"] and "certificate verify failed" in other["error"], other
    # and an unencrypted connection is refused by the server.
    plain = connect(namespace, NAME, "disable")
    assert not plain["ok"] and "no encryption" in plain["error"], plain
    print(f"\ntls: verify-full ok on 4 names; another CA: {other['error'][:80]!r}; "
          f"plain: {plain['error'][:80]!r}")  # fmt: skip


def test_tls_renewed_certificate_is_served_without_a_restart_under_load(namespace: Kubectl) -> None:
    # Given a Ready cluster serving the operator-issued certificate, under an audited workload with pgbench,
    namespace.apply([aurora.demo(readers=1)])
    st = aurora.wait_ready(namespace, NAME)
    namespace.apply([client_pod()])
    namespace.run("wait", "--for=condition=Ready", f"pod/{CLIENT}", "--timeout=120s")
    first = issued(namespace)
    assert served(namespace, NAME) == first
    started = {i["name"]: started_at(namespace, i["name"]) for i in st["instances"]}
    workload = Workload.start(namespace, NAME)
    # when the certificate is renewed (its Secret removed: the operator issues a new one at once),
    began = time.time()  # comparable with the workload pod's clock (kind nodes share the host's)
    namespace.run("delete", "secret", f"{NAME}-tls")
    t0 = time.monotonic()
    wait_for("a new certificate issued", lambda: issued(namespace) not in (first,), 60, interval=2)
    renewed = issued(namespace)
    # then the writer and the reader serve it to new connections once Kubernetes updates the mounted Secret,
    for host in (NAME, f"{NAME}-ro"):
        wait_for(f"{host} serving the renewed certificate", lambda h=host: served(namespace, h) == renewed,  # type: ignore[misc]
                 180, interval=3)  # fmt: skip
    took = time.monotonic() - t0
    audit = workload.audit()
    # without a restart, no client error, and every acknowledged commit there.
    after = aurora.wait_ready(namespace, NAME)
    assert {i["name"]: started_at(namespace, i["name"]) for i in after["instances"]} == started
    assert after["writer"] == st["writer"]
    during = [e for e in workload.errors() if e[0] >= began]
    assert not during, during[:5]
    assert not audit.missing, f"{len(audit.missing)} of {len(audit.acked)} acknowledged commits missing"
    print(f"\ntls rotation: renewed certificate served by writer and reader {took:.0f}s after the old one's "
          f"Secret was deleted, without a restart; {len(audit.acked)} acknowledged commits audited, "
          f"0 missing, 0 client errors during it")  # fmt: skip
