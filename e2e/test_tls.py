"""TLS on the kind test bed (on by default): a client verifies the cluster and reader endpoints with the CA
the cluster publishes (``sslmode=verify-full``), fails with another CA, and is refused without encryption;
a renewed certificate is served to new connections without a restart while an audited workload (with
pgbench) keeps committing, and nothing acknowledged is lost. Passwords rotate the same way: a password
removed from its Secret is generated again and applied, the replication streams reconnect with the new one,
and the old application password stops working. One cluster for all of it (the suite's time is the
budget: each cluster costs minutes on the test bed).

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
APP_SECRET = "/etc/app-secret"
SECRETS = "/etc/quorumdb/secrets"
STORAGE_PODS = "quorumdb.io/component=storage"
PROBE = """
import json, os, sys, psycopg
host, mode, rootcert = sys.argv[1], sys.argv[2], sys.argv[3]
# The password: the mounted Secret as the kubelet keeps it, or one given (an old one, to see it refused).
password = sys.argv[4] if len(sys.argv) > 4 else open("/etc/app-secret/password").read()
if rootcert.startswith("-----"):
    with open("/tmp/other-ca.crt", "w") as f:
        f.write(rootcert)
    rootcert = "/tmp/other-ca.crt"
try:
    with psycopg.connect(host=host, sslmode=mode, sslrootcert=rootcert, connect_timeout=10,
                         password=password) as conn:
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
        for var, key in (("PGUSER", "username"), ("PGDATABASE", "dbname"))
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
                "volumeMounts": [{"name": "ca", "mountPath": "/etc/cluster-ca", "readOnly": True},
                                 {"name": "app", "mountPath": APP_SECRET, "readOnly": True}],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }],
            "volumes": [{"name": "ca", "configMap": {"name": f"{NAME}-ca"}},
                        {"name": "app", "secret": {"secretName": f"{NAME}-app"}}],
        },
    }  # fmt: skip


def connect(ns: Kubectl, host: str, mode: str, rootcert: str = CA_FILE, *password: str) -> dict[str, Any]:
    out = ns.run("exec", CLIENT, "--", PYTHON, "-c", PROBE, host, mode, rootcert, *password)
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


def password(ns: Kubectl, account: str) -> str:
    return base64.b64decode(ns.get_json("secret", f"{NAME}-{account}")["data"].get("password", "")).decode()


def streaming(ns: Kubectl, writer: str) -> set[str]:
    """application_name of every stream the writer serves (readers and storage nodes)."""
    out = psql(ns, writer, "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")
    return set(out.split())


def mounted(ns: Kubectl, pod: str, path: str = f"{SECRETS}/replication/password") -> str:
    """SHA-256 of a mounted Secret's file in ``pod`` now (the kubelet updates it lazily): by default the
    replication password."""
    out = ns.run("exec", pod, "--", "sha256sum", path)
    return out.split()[0] if out.strip() else ""


def psql(ns: Kubectl, instance: str, sql: str) -> str:
    pod = aurora.instance_pod(instance)
    return ns.run("exec", "-i", pod, "--", "psql", "-X", "-At", "-h", aurora.SOCKET_DIR, "-U", "postgres",
                  "-d", "postgres", "-f", "-", stdin=sql).strip()  # fmt: skip


def test_tls_verify_full_renewal_under_load_and_password_rotation(namespace: Kubectl) -> None:
    # Given a cluster with default settings (one reader) and a client pod holding the CA it publishes,
    namespace.apply([aurora.demo(readers=1)])
    st = aurora.wait_ready(namespace, NAME)
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

    # Given the operator-issued certificate served, under an audited workload with pgbench,
    first = issued(namespace)
    assert served(namespace, NAME) == first
    started = {i["name"]: started_at(namespace, i["name"]) for i in st["instances"]}
    writer = st["writer"]
    workload = Workload.start(namespace, NAME)
    # when the certificate is renewed (its Secret removed: the operator issues a new one at once),
    began = time.time()  # comparable with the workload pod's clock (kind nodes share the host's)
    namespace.run("delete", "secret", f"{NAME}-tls")
    # and the replication password is rotated (removed from its Secret: the operator generates another),
    old_replication = password(namespace, "replication")
    namespace.run("patch", "secret", f"{NAME}-replication", "--type=json",
                  "-p", '[{"op": "remove", "path": "/data/password"}]')  # fmt: skip
    t0 = time.monotonic()
    wait_for("a new certificate issued", lambda: issued(namespace) not in (first,), 60, interval=2)
    renewed = issued(namespace)
    wait_for("a new replication password",
             lambda: password(namespace, "replication") not in ("", old_replication), 60, 2)  # fmt: skip
    # then the writer and the reader serve the new certificate once Kubernetes updates the mounted Secret,
    for host in (NAME, f"{NAME}-ro"):
        wait_for(f"{host} serving the renewed certificate", lambda h=host: served(namespace, h) == renewed,  # type: ignore[misc]
                 180, interval=3)  # fmt: skip
    took = time.monotonic() - t0
    # and the streams reconnect with the new replication password: once the writer holds it and the pods see
    # it mounted, the reader's and two storage nodes' streams (four stay, so commits go on) are cut on the
    # writer, and they come back.
    new_replication = password(namespace, "replication")
    digest = hashlib.sha256(new_replication.encode()).hexdigest()
    reader = next(i["name"] for i in st["instances"] if i["name"] != writer)
    storage_pods = namespace.get_json("pods", "-l", STORAGE_PODS)["items"]
    storage = sorted(p["metadata"]["name"] for p in storage_pods)[:2]
    for pod in [aurora.instance_pod(writer), aurora.instance_pod(reader), *storage]:
        wait_for(f"{pod} seeing the new replication password", lambda p=pod: mounted(namespace, p) == digest,  # type: ignore[misc]
                 240, interval=3)  # fmt: skip
    time.sleep(6)  # the managers' next look at the mount (each second; storage nodes every 5 s)
    cut = {reader, *(f"storage_{pod.rsplit('-', 1)[1]}" for pod in storage)}
    assert cut <= streaming(namespace, writer), cut
    names = ",".join(f"'{n}'" for n in sorted(cut))
    psql(namespace, writer, f"SELECT pg_terminate_backend(pid) FROM pg_stat_replication "
                            f"WHERE application_name IN ({names})")  # fmt: skip
    wait_for("the cut streams back", lambda: cut <= streaming(namespace, writer), 30, interval=1)
    audit = workload.audit()
    # without a restart, no client error, and every acknowledged commit there.
    after = aurora.wait_ready(namespace, NAME)
    assert {i["name"]: started_at(namespace, i["name"]) for i in after["instances"]} == started
    assert after["writer"] == st["writer"]
    during = [e for e in workload.errors() if e[0] >= began]
    assert not during, during[:5]
    assert not audit.missing, f"{len(audit.missing)} of {len(audit.acked)} acknowledged commits missing"
    print(f"\ntls rotation: renewed certificate served by writer and reader {took:.0f}s after the old one's "
          f"Secret was deleted, without a restart; replication password rotated, cut streams back with it; "
          f"{len(audit.acked)} acknowledged commits audited, 0 missing, 0 client errors")  # fmt: skip

    # Then the application password, removed from its Secret, is generated again and applied: the client
    # logs in through both endpoints with the Secret as mounted now, and the old password stops working.
    old_app = password(namespace, "app")
    namespace.run("patch", "secret", f"{NAME}-app", "--type=json",
                  "-p", '[{"op": "remove", "path": "/data/password"}]')  # fmt: skip
    t1 = time.monotonic()
    wait_for("a new app password", lambda: password(namespace, "app") not in ("", old_app), 60, interval=2)
    new_app = hashlib.sha256(password(namespace, "app").encode()).hexdigest()
    client_copy = f"{APP_SECRET}/password"  # until the kubelet updates it, the client uses the old one
    wait_for("the client pod seeing the new app password",
             lambda: mounted(namespace, CLIENT, client_copy) == new_app, 240, interval=3)  # fmt: skip
    for host in (NAME, f"{NAME}-ro"):
        wait_for(f"the new app password accepted through {host}",
                 lambda h=host: connect(namespace, h, "verify-full")["ok"], 240, interval=3)  # type: ignore[misc]  # fmt: skip
    refused = connect(namespace, NAME, "verify-full", CA_FILE, old_app)
    assert not refused["ok"] and "password authentication failed" in refused["error"], refused
    uri = base64.b64decode(namespace.get_json("secret", f"{NAME}-app")["data"]["uri"]).decode()
    assert password(namespace, "app") in uri
    print(f"password rotation: the new app password logs in through both endpoints "
          f"{time.monotonic() - t1:.0f}s after the request; the old one is refused")  # fmt: skip
