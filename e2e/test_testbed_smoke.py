"""Smoke test of the kind test bed: what the product needs from a cluster, checked for real.

One PVC-backed pod pinned to each zone, found by DNS through a headless Service from a pod on another node;
data written to each volume survives the pod being deleted and rescheduled; a NetworkPolicy admits the
client it names and denies one it does not.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from kube import Kubectl, wait_for

pytestmark = pytest.mark.e2e

TOOLS_IMAGE = os.environ.get("TESTBED_TOOLS_IMAGE", "quorumdb.local/testbed-tools:bookworm")
ZONES = ("zone-a", "zone-b", "zone-c")
ZONE_LABEL = "topology.kubernetes.io/zone"


def server_statefulset() -> list[dict[str, Any]]:
    labels = {"app": "web"}
    container = {
        "name": "web",
        "image": TOOLS_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python3", "-m", "http.server", "8080", "--directory", "/data"],
        "ports": [{"containerPort": 8080, "name": "http"}],
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"clusterIP": "None", "selector": labels, "ports": [{"name": "http", "port": 8080}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "web"},
            "spec": {
                "serviceName": "web",
                "replicas": 3,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": ZONE_LABEL,
                                "whenUnsatisfiable": "DoNotSchedule",
                                "labelSelector": {"matchLabels": labels},
                            }
                        ],
                        "containers": [container],
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "64Mi"}},
                        },
                    }
                ],
            },
        },
    ]


def client_pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "client",
                    "image": TOOLS_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "infinity"],
                }
            ],
        },
    }


def fetch(ns: Kubectl, client: str, url: str) -> tuple[bool, str]:
    """GET ``url`` from inside ``client``; (ok, body or error)."""
    script = (
        "import sys, urllib.request\n"
        "try:\n"
        f"    print(urllib.request.urlopen({url!r}, timeout=3).read().decode(), end='')\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e); sys.exit(3)\n"
    )
    out = ns.exec(client, "python3", "-c", script, check=False)
    return (not out.startswith(("URLError", "TimeoutError", "OSError", "ConnectionRefused")), out)


def ready_pods(ns: Kubectl, selector: str) -> list[dict[str, Any]]:
    pods = ns.get_json("pods", "-l", selector)["items"]
    return [
        p
        for p in pods
        if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]


def test_zones_volumes_dns_and_network_policy(kubectl: Kubectl, namespace: Kubectl) -> None:
    ns = namespace
    nodes = kubectl.get_json("nodes", "-l", ZONE_LABEL)["items"]
    zone_of_node = {n["metadata"]["name"]: n["metadata"]["labels"][ZONE_LABEL] for n in nodes}
    assert sorted(set(zone_of_node.values())) == list(ZONES), zone_of_node

    ns.apply(server_statefulset())
    ns.apply([client_pod("allowed", {"access": "allowed"}), client_pod("denied", {"access": "none"})])
    wait_for("3 web pods ready", lambda: len(ready_pods(ns, "app=web")) == 3, timeout=180)
    wait_for("client pods ready", lambda: len(ready_pods(ns, "access")) == 2, timeout=120)

    # One pod per zone, each volume bound on its pod's node.
    pods = {p["metadata"]["name"]: p for p in ready_pods(ns, "app=web")}
    assert sorted(zone_of_node[p["spec"]["nodeName"]] for p in pods.values()) == list(ZONES)
    for name, pod in pods.items():
        pvc = ns.get_json("pvc", f"data-{name}")
        pv = kubectl.get_json("pv", pvc["spec"]["volumeName"])
        terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
        pinned = {v for t in terms for e in t["matchExpressions"] for v in e["values"]}
        assert pinned == {pod["spec"]["nodeName"]}, (name, pinned)

    # Write a file on each volume, read it back over the network by DNS name.
    for name in pods:
        ns.exec(name, "sh", "-c", f"echo written-by-{name} > /data/marker")
    for name in pods:
        ok, body = fetch(ns, "allowed", f"http://{name}.web:8080/marker")
        assert ok and body.strip() == f"written-by-{name}", body

    # Data survives the pod being deleted and recreated on the same volume.
    ns.run("delete", "pod", "web-1", "--wait=true")
    wait_for("web-1 back", lambda: len(ready_pods(ns, "app=web")) == 3, timeout=120)
    assert ns.exec("web-1", "cat", "/data/marker").strip() == "written-by-web-1"

    # Before any policy both clients connect; after it only the allowed one does.
    assert fetch(ns, "denied", "http://web-0.web:8080/marker")[0]
    ns.apply(
        [
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "web-allow-labelled"},
                "spec": {
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"access": "allowed"}}}]}],
                },
            }
        ]
    )
    wait_for(
        "NetworkPolicy enforced (denied client blocked)",
        lambda: not fetch(ns, "denied", "http://web-0.web:8080/marker")[0],
        timeout=60,
        interval=2,
    )
    for name in pods:
        # kube-router programs a policy's allow-list asynchronously: right after the deny took effect the
        # allowed client may still be refused for a moment (seen once in a CI rehearsal), so wait for it.
        wait_for(
            f"the allowed client reaches {name}",
            lambda name=name: fetch(ns, "allowed", f"http://{name}.web:8080/marker")[0],  # type: ignore[misc]
            timeout=30,
            interval=1,
        )
        ok, body = fetch(ns, "denied", f"http://{name}.web:8080/marker")
        assert not ok, f"denied client reached {name}: {body}"
