"""The audited workload of the end-to-end failover tests: a pod in the cluster's namespace that writes
through the cluster endpoint and the test-host API that starts it, stops it and audits it.

Why in the cluster: the client must reach the writer the way applications do, through the ``<cluster>``
Service, and survive the failover the way they must (reconnect, retry). The pod runs the project image with
two containers sharing ``/tmp``: ``audit`` (``e2e/audit_client.py``: one row per autocommit transaction,
one log line per outcome) and, optionally, ``pgbench`` (``e2e/pgbench_loop.py``: load only, not audited).
The host reads the audit log with ``kubectl logs --tail=-1`` and checks **every** acknowledged id against
``SELECT id FROM audit`` through the writer endpoint. Times in the log are ``time.time()`` in the pod, which
is comparable with ``time.time()`` on the test host (kind nodes share its kernel clock).

It must not judge: it reports what was acknowledged, missing and when; the tests decide what is acceptable.
"""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NamedTuple

from kube import Kubectl, KubectlError

IMAGE = os.environ.get("QUORUMDB_IMAGE", "quorumdb.local/quorumdb:dev")
HERE = pathlib.Path(__file__).resolve().parent
SCRIPTS = ("audit_client.py", "pgbench_loop.py", "resume_client.py")
SCRIPT_DIR = "/opt/quorumdb-e2e"
PYTHON = "/opt/quorumdb/bin/python"
STOP_FILE = "/tmp/stop"
EXIT_FILE = "/tmp/exit"


@dataclass(frozen=True)
class AuditLog:
    """What the audit writer printed, parsed (pure: no I/O)."""

    acks: dict[int, float] = field(default_factory=dict)
    """Acknowledged id -> time the commit returned."""
    unsafe: dict[int, float] = field(default_factory=dict)
    """Ids whose commit returned with a warning (e.g. a cancelled synchronous-replication wait)."""
    errors: list[tuple[float, str]] = field(default_factory=list)
    """(time, message) of every failed connection attempt or statement."""
    connects: list[tuple[float, str]] = field(default_factory=list)
    """(time, server address) of every connection established."""
    first_id: int | None = None
    done: tuple[int, int] | None = None
    """(acks, errors) as counted by the client when it stopped; None while it runs."""

    @classmethod
    def parse(cls, text: str) -> AuditLog:
        acks: dict[int, float] = {}
        unsafe: dict[int, float] = {}
        errors: list[tuple[float, str]] = []
        connects: list[tuple[float, str]] = []
        first_id: int | None = None
        done: tuple[int, int] | None = None
        lines = text.split("\n")[:-1]  # the last piece is "" or a line still being written: skipped
        for line in lines:
            kind, _, rest = line.partition(" ")
            parts = rest.split(" ", 2)
            if kind == "ack" and len(parts) >= 2:
                acks[int(parts[0])] = float(parts[1])
            elif kind == "unsafe" and len(parts) >= 2:
                unsafe[int(parts[0])] = float(parts[1])
            elif kind == "err" and parts[0]:
                errors.append((float(parts[0]), rest.partition(" ")[2]))
            elif kind == "conn" and len(parts) >= 2:
                connects.append((float(parts[0]), parts[1]))
            elif kind == "start" and len(parts) >= 2:
                first_id = int(parts[1])
            elif kind == "done" and len(parts) >= 3:
                done = (int(parts[1]), int(parts[2]))
        return cls(acks, unsafe, errors, connects, first_id, done)

    @property
    def complete(self) -> bool:
        """The client stopped and every acknowledgement it counted is in this log (none was rotated away)."""
        return self.done is not None and self.done[0] == len(self.acks)

    @property
    def serving_errors(self) -> list[tuple[float, str]]:
        """Errors from the first acknowledged commit on. Before it, a client pod that was just created can
        be refused while the network (a NetworkPolicy's CNI) does not know its address yet: that is the
        client's start, not the database's behaviour."""
        first = min(self.acks.values(), default=None)
        return [] if first is None else [e for e in self.errors if e[0] >= first]

    def disruption_after(self, t: float) -> float | None:
        """Time of the first failure the client saw at or after ``t`` (None: it saw none)."""
        return next((e for e, _ in self.errors if e >= t), None)

    def recovered_after(self, t: float) -> bool:
        """The client saw a failure after ``t`` and a commit acknowledged after that."""
        failed = self.disruption_after(t)
        return failed is not None and any(a > failed for a in self.acks.values())

    def outage_after(self, t: float) -> float:
        """Seconds from ``t`` (e.g. the kill) to the first commit acknowledged after the client's first
        failure at or after ``t``. Commits the old writer still acknowledged before it died do not end the
        outage. With no failure after ``t``, the first acknowledgement after ``t``."""
        failed = self.disruption_after(t)
        start = t if failed is None else failed
        after = [a for a in self.acks.values() if a > start]
        if not after:
            raise ValueError(f"no commit acknowledged after {start:.3f} ({len(self.errors)} errors seen)")
        return min(after) - t

    def unavailability_after(self, t: float) -> float:
        """Seconds without acknowledged commits around the first failure at or after ``t``: last
        acknowledgement before it to the first one after it (a stalled commit before an error counts)."""
        failed = self.disruption_after(t)
        if failed is None:
            return 0.0
        before = [a for a in self.acks.values() if a <= failed]
        after = [a for a in self.acks.values() if a > failed]
        if not after:
            raise ValueError(f"no commit acknowledged after the failure at {failed:.3f}")
        return min(after) - (max(before) if before else t)


class Audit(NamedTuple):
    """Result of checking every acknowledged id against the table."""

    acked: frozenset[int]
    missing: frozenset[int]
    """Acknowledged ids not in the table: lost commits."""
    unacknowledged_present: int
    """Rows present whose commit was not acknowledged (outcome unknown, or returned with a warning)."""


def scripts_configmap(name: str) -> dict[str, Any]:
    data = {script: (HERE / script).read_text() for script in SCRIPTS}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def pod_manifest(
    name: str, cluster: str, pgbench: bool, max_seconds: float, avoid_node: str | None = None
) -> dict[str, Any]:
    """The workload pod: ``audit`` and optionally ``pgbench``, both from the project image as uid 999; never
    on ``avoid_node`` when given (a node the scenario is about to stop: the client must outlive it)."""
    secret = f"{cluster}-app"
    env = [
        {"name": "PGHOST", "value": cluster},
        {"name": "PGPORT", "value": "5432"},
        *(
            {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for var, key in (("PGUSER", "username"), ("PGPASSWORD", "password"), ("PGDATABASE", "dbname"))
        ),
    ]
    mounts = [
        {"name": "scripts", "mountPath": SCRIPT_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    common = {
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "volumeMounts": mounts,
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    audit = {
        "name": "audit",
        "args": [PYTHON, f"{SCRIPT_DIR}/audit_client.py", "write", "--max-seconds", str(max_seconds),
                 "--stop-file", STOP_FILE, "--exit-file", EXIT_FILE, "--linger-seconds", "3600"],
        **common,
    }  # fmt: skip
    load = {
        "name": "pgbench",
        "args": [PYTHON, f"{SCRIPT_DIR}/pgbench_loop.py", "--scale", "2", "--clients", "2",
                 "--max-seconds", str(max_seconds), "--stop-file", STOP_FILE],
        **common,
    }  # fmt: skip
    affinity = {}
    if avoid_node:
        not_there = {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": [avoid_node]}
        required = {"nodeSelectorTerms": [{"matchExpressions": [not_there]}]}
        affinity = {
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": "quorumdb-e2e-workload", "quorumdb.io/e2e-target": cluster},
            "annotations": {"kubectl.kubernetes.io/default-container": "audit"},
        },
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 999,
                "runAsGroup": 999,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            **affinity,
            "containers": [audit, load] if pgbench else [audit],
            "volumes": [
                {"name": "scripts", "configMap": {"name": f"{name}-scripts"}},
                {"name": "tmp", "emptyDir": {}},
            ],
        },
    }


class Workload:
    """One running workload pod; ``start`` returns once the first commit is acknowledged."""

    def __init__(self, ns: Kubectl, cluster: str, name: str) -> None:
        self.ns = ns
        self.cluster = cluster
        self.name = name
        self._final: AuditLog | None = None

    @classmethod
    def start(
        cls,
        ns: Kubectl,
        cluster: str,
        *,
        pgbench: bool = True,
        name: str = "workload",
        max_seconds: float = 3600,
        timeout: float = 120,
        avoid_node: str | None = None,
    ) -> Workload:
        pod = pod_manifest(name, cluster, pgbench, max_seconds, avoid_node)
        ns.apply([scripts_configmap(f"{name}-scripts"), pod])
        workload = cls(ns, cluster, name)
        workload.wait_until(lambda log: bool(log.acks), "the first acknowledged commit", timeout)
        return workload

    # --- reading -----------------------------------------------------------------------------------
    def log_text(self, container: str = "audit") -> str:
        return self.ns.run("logs", self.name, "-c", container, "--tail=-1")

    def read(self) -> AuditLog:
        """The audit log as it is now (the final one once stopped)."""
        return self._final if self._final is not None else AuditLog.parse(self.log_text())

    def wait_until(self, predicate: Callable[[AuditLog], bool], what: str, timeout: float) -> AuditLog:
        """Poll the audit log until ``predicate(log)``; on timeout fail with the pod's state and log tail."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                log = self.read()
                if predicate(log):
                    return log
            except KubectlError as err:  # container not started yet
                last = err
            time.sleep(1)
        raise TimeoutError(f"workload {self.name}: {what} not seen within {timeout:.0f}s: {self.describe()}"
                           f" (last error: {last})")  # fmt: skip

    def describe(self) -> str:
        try:
            pod = self.ns.get_json("pod", self.name)
        except KubectlError as err:
            return str(err)
        states = {c["name"]: c.get("state") for c in pod.get("status", {}).get("containerStatuses", [])}
        tail = self.ns.run("logs", self.name, "-c", "audit", "--tail=20", check=False)
        return f"phase {pod.get('status', {}).get('phase')}, containers {states}, audit log tail:\n{tail}"

    def acks(self) -> dict[int, float]:
        return self.read().acks

    def errors(self) -> list[tuple[float, str]]:
        """Client errors since the workload started serving (its first acknowledged commit, which ``start``
        waits for): what the tests judge."""
        return self.read().serving_errors

    def startup_errors(self) -> int:
        """Errors before the first acknowledged commit (a new pod's address not yet admitted)."""
        log = self.read()
        return len(log.errors) - len(log.serving_errors)

    def outage_after(self, t_kill: float) -> float:
        return self.read().outage_after(t_kill)

    def unavailability_after(self, t: float) -> float:
        return self.read().unavailability_after(t)

    # --- control -----------------------------------------------------------------------------------
    def stop(self, timeout: float = 60) -> AuditLog:
        """Ask both containers to stop, wait for the writer's ``done``; the complete final log."""
        if self._final is None:
            self.ns.run("exec", self.name, "-c", "audit", "--", "touch", STOP_FILE)
            log = self.wait_until(lambda log: log.done is not None, "`done` after the stop file", timeout)
            if not log.complete:
                raise AssertionError(
                    f"workload {self.name}: the client counted {log.done} acknowledgements but the log has "
                    f"{len(log.acks)}: the container log was truncated, the audit would be incomplete"
                )
            self._final = log
        return self._final

    def audit(self, timeout: float = 90) -> Audit:
        """Stop (if running), then read every id through the writer endpoint and compare."""
        log = self.stop()
        out = self.ns.run("exec", self.name, "-c", "audit", "--", PYTHON, f"{SCRIPT_DIR}/audit_client.py",
                          "ids", "--timeout", str(timeout), timeout=timeout + 30)  # fmt: skip
        lines = out.split()
        if len(lines) < 2 or lines[-2] != "end" or int(lines[-1]) != len(lines) - 2:
            raise AssertionError(f"workload {self.name}: incomplete id listing ({len(lines)} words)")
        present = {int(i) for i in lines[:-2]}
        acked = frozenset(log.acks)
        return Audit(acked, frozenset(acked - present), len(present - acked))

    def delete(self) -> None:
        self.ns.run("exec", self.name, "-c", "audit", "--", "touch", STOP_FILE, EXIT_FILE, check=False)
        self.ns.run("delete", "pod", self.name, "--wait=false", "--ignore-not-found", check=False)
        self.ns.run("delete", "configmap", f"{self.name}-scripts", "--ignore-not-found", check=False)

    def __enter__(self) -> Workload:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._final is None:  # a failed test: stop the load, keep the pod for its logs
            self.ns.run("exec", self.name, "-c", "audit", "--", "touch", STOP_FILE, check=False)
