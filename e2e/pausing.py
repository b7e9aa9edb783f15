"""Pause/resume cycles on the kind test bed, shared by ``test_pause.py`` (a few cycles) and
``pause_chaos.py`` (``make chaos-pause``: the resume-time distribution over many).

One cycle: wait until the cluster has paused by itself (no client for ``secondsUntilAutoPause``: phase
Paused, PostgreSQL stopped in every instance, their pods' requests released), then connect through the
cluster endpoint from a client pod and time the connect to the first answered query (``resume_client.py``
``probe``), and commit a batch whose every acknowledged id is audited at the end.

It must not judge: it measures and returns; callers assert.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aurora
from kube import Kubectl, wait_for
from workload import IMAGE, PYTHON, SCRIPT_DIR, scripts_configmap

NAME = "demo"
CLIENT = "resume-client"
IDLE_SECONDS = 10
PAUSED_REQUESTS = {"cpu": "10m", "memory": "128Mi"}


def manifest(idle_seconds: int = IDLE_SECONDS, readers: int = 1, max_acu: float = 2) -> dict[str, Any]:
    m = aurora.demo(readers=readers)
    instances = m["spec"]["instances"]
    del instances["resources"]
    instances["serverless"] = {
        "minCapacity": 0, "maxCapacity": max_acu, "secondsUntilAutoPause": idle_seconds,
    }  # fmt: skip
    return m


def client_pod(cluster: str = NAME) -> dict[str, Any]:
    """A pod that only waits; the client runs in it through ``kubectl exec`` (its own timing inside)."""
    secret = f"{cluster}-app"
    env = [
        {"name": "PGHOST", "value": cluster},
        *(
            {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for var, key in (("PGUSER", "username"), ("PGPASSWORD", "password"), ("PGDATABASE", "dbname"))
        ),
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": CLIENT, "labels": {"app.kubernetes.io/name": "quorumdb-e2e-resume-client"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 999, "runAsGroup": 999,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "client", "image": IMAGE, "imagePullPolicy": "IfNotPresent", "env": env,
                "args": [PYTHON, "-c", "import time; time.sleep(10**9)"],
                "volumeMounts": [{"name": "scripts", "mountPath": SCRIPT_DIR, "readOnly": True}],
                "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }],
            "volumes": [{"name": "scripts", "configMap": {"name": f"{CLIENT}-scripts"}}],
        },
    }  # fmt: skip


def start_client(ns: Kubectl) -> None:
    ns.apply([scripts_configmap(f"{CLIENT}-scripts"), client_pod()])
    ns.run("wait", "--for=condition=Ready", f"pod/{CLIENT}", "--timeout=120s")


def run_client(ns: Kubectl, *args: str) -> Any:
    out = ns.run("exec", CLIENT, "--", PYTHON, f"{SCRIPT_DIR}/resume_client.py", *args, timeout=180)
    return json.loads(out.strip().splitlines()[-1])


def requests_of(ns: Kubectl) -> dict[str, dict[str, str]]:
    """Instance pod -> its PostgreSQL container's requests (the spec: what the scheduler reserves)."""
    return {
        name: next(c for c in pod["spec"]["containers"] if c["name"] == "postgres")["resources"]["requests"]
        for name, pod in aurora.cluster_pods(ns, NAME).items()
        if "-instance-" in name
    }


def paused(ns: Kubectl) -> bool:
    st = aurora.status(ns, NAME)
    pause = st.get("pause") or {}
    return (
        st.get("phase") == "Paused"
        and pause.get("state") == "Paused"
        and all(i.get("acu") == 0 for i in st.get("instances", []))
        and all(r == PAUSED_REQUESTS for r in requests_of(ns).values())
    )


def running(ns: Kubectl) -> bool:
    st = aurora.status(ns, NAME)
    return st.get("phase") == "Ready" and not st.get("pause")


@dataclass(frozen=True)
class Cycle:
    paused_after: float
    """Seconds from the previous client's disconnect until the cluster reported Paused."""
    resume_seconds: float
    """Client's connect -> first answered query (measured in the client pod)."""
    acked: list[int]
    resumed_after: float
    """Client's connect -> the cluster reported Ready again (endpoints back on the instances)."""


def cycle(ns: Kubectl, commits: int = 20, timeout: float = 180) -> Cycle:
    t0 = time.monotonic()
    wait_for("the cluster paused by itself", lambda: paused(ns), timeout)
    paused_after = time.monotonic() - t0
    t1 = time.monotonic()
    result = run_client(ns, "probe", "--commits", str(commits))
    wait_for("the cluster running again", lambda: running(ns), timeout)
    return Cycle(paused_after, float(result["resume_seconds"]), list(result["acked"]), time.monotonic() - t1)


def audit(ns: Kubectl, acked: set[int]) -> set[int]:
    """The acknowledged ids missing from the table (read through the cluster endpoint: resumes if paused)."""
    return acked - set(run_client(ns, "ids"))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def distribution(name: str, values: list[float]) -> str:
    return (
        f"{name}: n={len(values)} p50={percentile(values, 50):.3f}s p90={percentile(values, 90):.3f}s "
        f"p99={percentile(values, 99):.3f}s max={max(values):.3f}s"
    )
