"""Security on the kind test bed: the control endpoints (an instance manager's promote, a storage node's term)
refuse a caller without the cluster's control token, from an arbitrary pod in the cluster's namespace, and
nothing changes; the same pod reads status, so the refusal is the token's doing, not the network's. With
NetworkPolicies (the default), a pod outside ``spec.network.allowedClients`` cannot reach PostgreSQL and the
same pod can once it is allowed; no pod but the cluster's and the operator's reaches the control ports."""

from __future__ import annotations

import json

import aurora
import pytest
from kube import Kubectl, wait_for
from workload import IMAGE, PYTHON

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("operator")]
NAME = "demo"
PROBE = """
import json, sys, httpx
method, url, body = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
try:
    r = httpx.request(method, url, json=body, timeout=5)
    print(json.dumps({"status": r.status_code, "body": r.text[:2000]}))
except httpx.TransportError as err:  # not reached (a NetworkPolicy drops it): status 0
    print(json.dumps({"status": 0, "body": repr(err)}))
"""


def intruder(labels: dict[str, str] | None = None) -> dict[str, object]:
    return {
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


def call(ns: Kubectl, method: str, url: str, body: object = None) -> tuple[int, str]:
    out = ns.run("exec", "intruder", "--", PYTHON, "-c", PROBE, method, url, json.dumps(body))
    answer = json.loads(out.strip().splitlines()[-1])
    return int(answer["status"]), str(answer["body"])


def test_control_endpoints_refuse_callers_without_the_token(namespace: Kubectl) -> None:
    # Given a Ready cluster without NetworkPolicies (so the token alone is tested) and a pod of someone
    # else's in its namespace,
    cluster = aurora.demo(readers=1)
    cluster["spec"]["network"] = {"policies": False}
    namespace.apply([cluster])
    st = aurora.wait_ready(namespace, NAME)
    namespace.apply([intruder()])
    namespace.run("wait", "--for=condition=Ready", "pod/intruder", "--timeout=120s")
    writer, term = st["writer"], st["term"]
    reader = next(i["name"] for i in st["instances"] if i["name"] != writer)
    node = f"http://{NAME}-storage-0-0.{NAME}-storage.{namespace.namespace}.svc.cluster.local:7000"
    # which can read an instance's status and a storage node's term (the network lets it through),
    assert call(namespace, "GET", f"http://{reader}:8008/v1/status")[0] == 200
    status, body = call(namespace, "GET", f"{node}/v1/term")
    assert status == 200 and json.loads(body)["term"] == term
    # when it asks the reader to promote itself and a storage node to take a higher term, without the token,
    assert call(namespace, "POST", f"http://{reader}:8008/v1/promote", {"term": term + 10})[0] == 401
    assert call(namespace, "PUT", f"{node}/v1/term", {"term": term + 10})[0] == 401
    # then both are refused and nothing changed: same writer, same term, the storage node at the old term.
    after = aurora.wait_ready(namespace, NAME)
    assert (after["writer"], after["term"]) == (writer, term)
    assert aurora.instance_status(after, reader)["role"] == "reader"
    assert json.loads(call(namespace, "GET", f"{node}/v1/term")[1])["term"] == term


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


def test_network_policy_admits_only_allowed_clients_and_keeps_control_ports_private(
    namespace: Kubectl,
) -> None:
    # Given a cluster whose allowed clients are the pods labelled app=shop, and a pod without that label,
    cluster = aurora.demo(readers=1)
    cluster["spec"]["network"] = {"policies": True, "allowedClients": [{"podLabels": {"app": "shop"}}]}
    namespace.apply([cluster, intruder({"app": "other"})])
    st = aurora.wait_ready(namespace, NAME)
    namespace.run("wait", "--for=condition=Ready", "pod/intruder", "--timeout=120s")
    reader = next(i["name"] for i in st["instances"] if i["name"] != st["writer"])
    # then that pod cannot reach PostgreSQL through the cluster endpoint,
    wait_for("the unlabelled pod shut out", lambda: not reaches_postgresql(namespace, NAME), 60, interval=2)
    # the same pod can once it carries the label (the policy, not the network, made the difference),
    namespace.run("label", "pod", "intruder", "app=shop", "--overwrite")
    wait_for("the labelled pod let in", lambda: reaches_postgresql(namespace, NAME), 60, interval=2)
    # and even allowed, it cannot reach an instance manager's or a storage node's control port.
    node = f"http://{NAME}-storage-0-0.{NAME}-storage.{namespace.namespace}.svc.cluster.local:7000"
    for url in (f"http://{reader}:8008/v1/status", f"{node}/v1/term"):
        status, body = call(namespace, "GET", url)
        assert status == 0, (url, status, body)
    assert aurora.wait_ready(namespace, NAME)["writer"] == st["writer"]
