"""Security on the kind test bed: the control endpoints (an instance manager's promote, a storage node's term)
refuse a caller without the cluster's control token, from an arbitrary pod in the cluster's namespace, and
nothing changes; the same pod reads status, so the refusal is the token's doing, not the network's."""

from __future__ import annotations

import json

import aurora
import pytest
from kube import Kubectl
from workload import IMAGE, PYTHON

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("operator")]
NAME = "demo"
PROBE = """
import json, sys, httpx
method, url, body = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
r = httpx.request(method, url, json=body, timeout=10)
print(json.dumps({"status": r.status_code, "body": r.text[:2000]}))
"""


def intruder() -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "intruder"},
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
    # Given a Ready cluster and a pod of someone else's in its namespace,
    namespace.apply([aurora.demo(readers=1)])
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
