"""Security on the kind test bed, on one cluster (each cluster costs minutes of the suite's budget).

NetworkPolicies (on by default): a pod outside ``spec.network.allowedClients`` cannot reach PostgreSQL and the
same pod can once it is allowed; even then it reaches no control port. Token login: a ServiceAccount token
issued for the cluster's audience logs in as the role it is mapped to, through the writer and the reader
endpoints; an expired token (signed by the test bed's own key, so expiry is the only fault: the same token
with a later expiry is admitted), one for another audience, one of an unmapped ServiceAccount and a malformed
one are refused, and no token reaches a log. The control token: a pod that carries the cluster's own label
(so the policies let it through to the control ports, and it reads status) is still refused promote and a
term change without the token, and nothing changes. The control token rotated on request: switchovers work
while the pods still hold only the old token (the operator falls back to the previous one) and after they
hold the new one."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import time
from typing import Any

import aurora
import jwt
import pytest
from aurora_api import contract
from kube import Kubectl, wait_for
from workload import IMAGE, PYTHON

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("operator")]
NAME = "demo"
PROBE = """
import json, sys, httpx
method, url, body = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
try:
    r = httpx.request(method, url, json=body, timeout=5, verify=False)  # a stranger trusts anything
    print(json.dumps({"status": r.status_code, "body": r.text[:2000]}))
except httpx.TransportError as err:  # not reached (a NetworkPolicy drops it): status 0
    print(json.dumps({"status": 0, "body": repr(err)}))
"""


def intruder(labels: dict[str, str] | None = None, ca: bool = False) -> dict[str, Any]:
    """A pod that is not the cluster's; with ``ca``, the cluster's published CA at ``CA_FILE``."""
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "intruder", "labels": labels or {}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 999,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "sh", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                "args": [PYTHON, "-c", "import time; time.sleep(10**9)"],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }  # fmt: skip
    if ca:
        pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "ca", "mountPath": "/etc/cluster-ca"}]
        pod["spec"]["volumes"] = [{"name": "ca", "configMap": {"name": f"{NAME}-ca"}}]
    return pod


def call(ns: Kubectl, method: str, url: str, body: object = None) -> tuple[int, str]:
    out = ns.run("exec", "intruder", "--", PYTHON, "-c", PROBE, method, url, json.dumps(body))
    answer = json.loads(out.strip().splitlines()[-1])
    return int(answer["status"]), str(answer["body"])


CONNECT = """
import json, sys, psycopg
try:
    with psycopg.connect(host=sys.argv[1], user="app", dbname="app", password="wrong", connect_timeout=5):
        pass
except psycopg.OperationalError as err:
    print(json.dumps({"reached": "password authentication failed" in str(err), "error": str(err)[:300]}))
"""


def reaches_postgresql(ns: Kubectl, host: str) -> bool:
    """The pod's TCP connection gets to PostgreSQL (which then refuses the wrong password), or times out."""
    out = ns.run("exec", "intruder", "--", PYTHON, "-c", CONNECT, host, timeout=60)
    return bool(json.loads(out.strip().splitlines()[-1])["reached"])


CA_FILE = "/etc/cluster-ca/ca.crt"
TOKEN_LOGIN = """
import json, sys, psycopg
host, role, token = sys.argv[1], sys.argv[2], sys.stdin.read()
try:
    with psycopg.connect(host=host, user=role, dbname="app", password=token, sslmode="verify-full",
                         sslrootcert="/etc/cluster-ca/ca.crt", connect_timeout=10) as conn:
        q = "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        row = conn.execute(q).fetchone()
        print(json.dumps({"ok": True, "user": row[0], "ssl": row[1]}))
except psycopg.OperationalError as err:
    print(json.dumps({"ok": False, "error": str(err)[:400]}))
"""


def token_login(ns: Kubectl, host: str, token: str, role: str = "reporting") -> dict[str, Any]:
    """Log in from the intruder pod with ``token`` as the password (on stdin: never in a process list)."""
    out = ns.run("exec", "-i", "intruder", "--", PYTHON, "-c", TOKEN_LOGIN, host, role, stdin=token)
    answer: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return answer


def service_account(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}


def resigned(ns: Kubectl, token: str, expires_in: float) -> str:
    """``token``'s claims with another expiry, signed with the test bed's service-account key: a token the
    API server itself could have issued."""
    nodes = ns.get_json("nodes", "-l", "node-role.kubernetes.io/control-plane")["items"]
    node = nodes[0]["metadata"]["name"]  # a kind node is a container of the same name
    key = subprocess.run(["docker", "exec", node, "cat", "/etc/kubernetes/pki/sa.key"], check=True,
                         capture_output=True, timeout=30).stdout  # fmt: skip
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    now = int(time.time())
    claims |= {"exp": now + int(expires_in), "iat": now - 900, "nbf": now - 900}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": header["kid"]})


def test_network_policy_token_login_and_control_token_on_one_cluster(namespace: Kubectl) -> None:
    ns = namespace.namespace
    audience = f"quorumdb:{ns}:{NAME}"
    # Given a cluster whose allowed clients are the pods labelled app=shop, whose role "reporting" logs in
    # with tokens of the ServiceAccount "reporter", and a pod without that label,
    cluster = aurora.demo(readers=1)
    cluster["spec"]["network"] = {"allowedClients": [{"podLabels": {"app": "shop"}}]}  # policies: the default
    cluster["spec"]["tokenLogin"] = {"roles": [{"role": "reporting", "serviceAccounts": [f"{ns}/reporter"]}]}
    namespace.apply([service_account("reporter"), service_account("stranger"), cluster,
                     intruder({"app": "other"}, ca=True)])  # fmt: skip
    st = aurora.wait_ready(namespace, NAME)
    namespace.run("wait", "--for=condition=Ready", "pod/intruder", "--timeout=120s")
    writer, term = st["writer"], st["term"]
    reader = next(i["name"] for i in st["instances"] if i["name"] != writer)
    node = f"https://{NAME}-storage-0-0.{NAME}-storage.{ns}.svc.cluster.local:7000"
    network_policy_admits_only_allowed_clients_and_keeps_control_ports_private(namespace, reader, node)
    token_login_admits_a_mapped_account_and_refuses_expired_wrong_audience_unmapped_tokens(
        namespace, audience
    )
    control_endpoints_refuse_callers_without_the_token(namespace, reader, node, writer, term)
    control_token_rotates_without_interrupting_switchovers(namespace, writer, reader)


def network_policy_admits_only_allowed_clients_and_keeps_control_ports_private(
    namespace: Kubectl, reader: str, node: str
) -> None:
    # The pod without the label cannot reach PostgreSQL through the cluster endpoint,
    wait_for("the unlabelled pod shut out", lambda: not reaches_postgresql(namespace, NAME), 60, interval=2)
    # the same pod can once it carries the label (the policy, not the network, made the difference),
    namespace.run("label", "pod", "intruder", "app=shop", "--overwrite")
    wait_for("the labelled pod let in", lambda: reaches_postgresql(namespace, NAME), 60, interval=2)
    # and even allowed, it cannot reach an instance manager's or a storage node's control port.
    for url in (f"https://{reader}:8008/v1/status", f"{node}/v1/term"):
        status, body = call(namespace, "GET", url)
        assert status == 0, (url, status, body)


def token_login_admits_a_mapped_account_and_refuses_expired_wrong_audience_unmapped_tokens(
    namespace: Kubectl, audience: str
) -> None:
    def token(account: str, aud: str) -> str:
        return namespace.run("create", "token", account, f"--audience={aud}", "--duration=10m").strip()

    good = token("reporter", audience)
    assert len(good) > 512  # longer than pam_exec would pass on: the project's PAM module must pass it whole
    # When a client presents reporter's token for the cluster's audience, it is "reporting", over TLS,
    # through the cluster endpoint and the reader endpoint (the writer creates the role on its first pass;
    # the readers have it once they replay that far),
    for host in (NAME, f"{NAME}-ro"):

        def admitted(h: str = host) -> bool:
            return token_login(namespace, h, good).get("ok") is True

        wait_for(f"token login through {host}", admitted, 90, interval=2)
        answer = token_login(namespace, host, good)
        assert answer == {"ok": True, "user": "reporting", "ssl": True}, (host, answer)
    # the same claims re-signed with a later expiry are admitted (so the key and claims are right) and,
    # expired, refused; so are a token for another audience, a stranger's token, and a malformed one,
    assert token_login(namespace, NAME, resigned(namespace, good, 600))["ok"] is True
    refused = {
        "expired": resigned(namespace, good, -600),  # beyond the validator's one-minute leeway
        "wrong audience": token("reporter", "someone-else"),
        "unmapped account": token("stranger", audience),
        "malformed": "not-a-token",
        "other role": good,
    }
    for why, bad in refused.items():
        answer = token_login(namespace, NAME, bad, role="app" if why == "other role" else "reporting")
        assert answer["ok"] is False, (why, answer)
        expected = "password authentication failed" if why == "other role" else "PAM authentication failed"
        assert expected in answer["error"], (why, answer)
    # and no token appears in any log of the cluster's pods (the checker logs verdicts, never a token).
    logs = "".join(
        namespace.run("logs", pod, "--all-containers") for pod in aurora.cluster_pods(namespace, NAME)
    )
    assert "quorumdb-token-login: accepted login as 'reporting'" in logs
    assert "token rejected by the API server" in logs
    for credential in [good, *refused.values()]:
        assert credential not in logs and credential.split(".")[-1] not in logs
    assert base64.b64encode(good.encode()).decode()[:40] not in logs


def control_endpoints_refuse_callers_without_the_token(
    namespace: Kubectl, reader: str, node: str, writer: str, term: int
) -> None:
    # When the pod carries the cluster's own label, the policies let it through to the control ports
    # (the operator ignores a labelled pod that is neither an instance nor a storage node):
    status_url = f"https://{reader}:8008/v1/status"
    namespace.run("label", "pod", "intruder", f"{contract.LABEL_CLUSTER}={NAME}", "--overwrite")
    wait_for("the pod with the cluster's label reaching the control port",
             lambda: call(namespace, "GET", status_url)[0] == 200, 60, interval=2)  # fmt: skip
    status, body = call(namespace, "GET", f"{node}/v1/term")
    assert status == 200 and json.loads(body)["term"] == term
    # they speak HTTPS only (plain HTTP gets no answer), with a certificate of the cluster's CA,
    for url in (status_url, f"{node}/v1/term"):
        assert call(namespace, "GET", url.replace("https://", "http://"))[0] == 0, url
    assert verified_by_cluster_ca(namespace, status_url) and verified_by_cluster_ca(namespace, node)
    # it asks the reader to promote itself and a storage node to take a higher term, without the token:
    assert call(namespace, "POST", f"https://{reader}:8008/v1/promote", {"term": term + 10})[0] == 401
    assert call(namespace, "PUT", f"{node}/v1/term", {"term": term + 10})[0] == 401
    # both are refused and nothing changed: same writer, same term, the storage node at the old term.
    after = aurora.wait_ready(namespace, NAME)
    assert (after["writer"], after["term"]) == (writer, term)
    assert aurora.instance_status(after, reader)["role"] == "reader"
    assert json.loads(call(namespace, "GET", f"{node}/v1/term")[1])["term"] == term
    namespace.run("label", "pod", "intruder", f"{contract.LABEL_CLUSTER}-")


CHAIN = """
import socket, ssl, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
context = ssl.create_default_context(cafile="/etc/cluster-ca/ca.crt")
context.check_hostname = False  # reached by address: the chain to the cluster's CA is the check
with socket.create_connection((u.hostname, u.port), timeout=5) as raw, context.wrap_socket(raw) as tls:
    print(tls.version())
"""


def verified_by_cluster_ca(ns: Kubectl, url: str) -> bool:
    """The endpoint's certificate chains to the CA the cluster publishes (the cluster's own)."""
    out = ns.run("exec", "intruder", "--", PYTHON, "-c", CHAIN, url, check=False)
    return out.strip().endswith(("TLSv1.2", "TLSv1.3"))


def control_tokens(ns: Kubectl) -> dict[str, str]:
    data = ns.get_json("secret", f"{NAME}-control")["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def switchover(ns: Kubectl, to: str) -> None:
    ns.run("annotate", "aurora", NAME, f"quorumdb.io/switchover={to}")
    aurora.wait_for_annotation_removed(ns, NAME, "quorumdb.io/switchover", timeout=90)
    st = aurora.wait_ready(ns, NAME)
    assert st["writer"] == to, aurora.brief(st)


def control_token_rotates_without_interrupting_switchovers(
    namespace: Kubectl, writer: str, reader: str
) -> None:
    # When a rotation of the control token is asked for,
    old = control_tokens(namespace)["token"]
    namespace.run("annotate", "aurora", NAME, "quorumdb.io/rotate-control-token=now")
    aurora.wait_for_annotation_removed(namespace, NAME, "quorumdb.io/rotate-control-token", timeout=60)
    rotated = control_tokens(namespace)
    assert rotated["previous"] == old and rotated["token"] != old
    # then a switchover right away works while the pods still hold only the old token (the kubelet updates
    # mounted Secrets within a minute or two; the operator's first try is refused, the previous one passes),
    switchover(namespace, reader)
    # and, once every pod holds the new token, a switchover back works too (the new token passes at once).
    digest = hashlib.sha256(rotated["token"].encode()).hexdigest()
    for pod in aurora.cluster_pods(namespace, NAME):
        wait_for(f"{pod} holding the new control token", lambda p=pod: mounted_token(namespace, p) == digest,  # type: ignore[misc]
                 240, interval=3)  # fmt: skip
    switchover(namespace, writer)
    print(f"control token rotated: a switchover with the old token mounted, one with the new; "
          f"the previous token accepted until {rotated_until(namespace)}")  # fmt: skip


def mounted_token(ns: Kubectl, pod: str) -> str:
    """SHA-256 of the control token as mounted in ``pod`` now."""
    out = ns.run("exec", pod, "--", "sha256sum", "/etc/quorumdb/secrets/control/token", check=False)
    return out.split()[0] if out.strip() else ""


def rotated_until(ns: Kubectl) -> str:
    annotations = ns.get_json("secret", f"{NAME}-control")["metadata"].get("annotations", {})
    return str(annotations.get("quorumdb.io/previous-token-until"))
