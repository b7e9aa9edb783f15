"""What the failover tests and ``e2e/chaos.py`` observe of an AuroraCluster on the test bed, and the one
disruption they cause: status reads and waits, the writer's pod, Events by reason, the writer pod's forced
deletion, and a sampler that records which pods carry the writer label while a scenario runs.

It reads and kills through ``kubectl`` only, like a user; it must not assert anything itself (the scenarios
do) except that a wait ends in time.
"""

from __future__ import annotations

import copy
import os
import pathlib
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import yaml
from kube import Kubectl, KubectlError, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEMO: dict[str, Any] = yaml.safe_load((ROOT / "docs/examples/aurora-demo.yaml").read_text())
WRITER_LABEL = "quorumdb.io/role=writer"
OPERATOR_NAMESPACE = "quorumdb-system"
OPERATOR_SELECTOR = "app.kubernetes.io/name=quorumdb-operator"


def demo(readers: int = 2, backup: bool = False) -> dict[str, Any]:
    """The documented demo cluster (``demo``), with ``readers`` readers; without its ``backup`` section
    unless asked (the namespace then needs ``minio_credentials``)."""
    manifest = copy.deepcopy(DEMO)
    if not backup:
        del manifest["spec"]["backup"]
    instances = manifest["spec"]["instances"]
    instances["readers"] = readers
    instances["promotionTiers"] = instances["promotionTiers"][: readers + 1]
    return manifest


def status(ns: Kubectl, name: str) -> dict[str, Any]:
    found: dict[str, Any] = ns.get_json("aurora", name).get("status", {})
    return found


def brief(st: dict[str, Any]) -> str:
    """The status fields a failover test looks at, for failure messages."""
    keys = ("phase", "writer", "targetWriter", "term", "timeline", "failover", "lastFailover", "instances")
    conditions = [(c.get("type"), c.get("status"), c.get("reason")) for c in st.get("conditions", [])]
    return f"{ {k: st.get(k) for k in keys} } conditions {conditions}"


def _wait(ns: Kubectl, name: str, what: str, predicate: Callable[[], bool], timeout: float) -> dict[str, Any]:
    """``wait_for`` that names the cluster's last status when it times out; returns the status."""
    try:
        wait_for(f"{name}: {what}", predicate, timeout, interval=0.5)
    except TimeoutError as err:
        raise TimeoutError(f"{err}; last status: {brief(status(ns, name))}") from err
    return status(ns, name)


def wait_ready(ns: Kubectl, name: str, timeout: float = 300) -> dict[str, Any]:
    return _wait(ns, name, "phase Ready", lambda: status(ns, name).get("phase") == "Ready", timeout)


def instance_pod(instance: str) -> str:
    """An instance's pod: its StatefulSet has one replica, ordinal 0."""
    return f"{instance}-0"


def instance_status(st: dict[str, Any], instance: str) -> dict[str, Any]:
    """``status.instances[]`` entry of ``instance`` (what its instance manager reported); {} if absent."""
    found: dict[str, Any] = next((i for i in st.get("instances", []) if i.get("name") == instance), {})
    return found


IMAGE = os.environ.get("QUORUMDB_IMAGE", "quorumdb.local/quorumdb:dev")


def install_operator(kubectl: Kubectl) -> None:
    """The operator with Helm, as a user installs it (`make image` must have loaded the image).

    The image's ID goes into a pod annotation: a rebuilt image under the same tag then rolls the operator
    (an unchanged release would keep the old process running against a cluster reused between runs)."""
    repo, _, tag = IMAGE.rpartition(":")
    image_id = (
        subprocess.run(
            ["docker", "image", "inspect", "-f", "{{.Id}}", IMAGE],
            capture_output=True,
            text=True,
            check=False,
        )
        .stdout.strip()
        .replace("sha256:", "")[:40]
    )
    # Helm installs a chart's CRDs only on first install and never upgrades them: as documented for users
    # (docs/operator.md), the current CRDs are applied first, so a reused test bed gets new fields.
    crds = str(ROOT / "charts" / "quorumdb" / "crds")
    kubectl.run("apply", "--server-side", "--force-conflicts", "-f", crds)
    subprocess.run(
        ["helm", "upgrade", "--install", "quorumdb", str(ROOT / "charts" / "quorumdb"),
         "--kubeconfig", kubectl.kubeconfig, "--namespace", OPERATOR_NAMESPACE, "--create-namespace",
         "--set", f"image.repository={repo}", "--set", f"image.tag={tag}",
         "--set-string", f"operator.podAnnotations.quorumdb\\.io/image-id={image_id or 'unknown'}",
         "--wait", "--timeout", "180s"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip


def kill_container(pod: dict[str, Any]) -> None:
    """SIGKILL a pod's container from its kind node: its first process dies and with it every process in its
    PID namespace (as in a power cut); the kubelet restarts the container in the same pod (same volumes)."""
    cid = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    script = f"kill -9 $(crictl inspect --output go-template --template '{{{{.info.pid}}}}' {cid})"
    subprocess.run(["docker", "exec", pod["spec"]["nodeName"], "sh", "-c", script], check=True, timeout=30)


def pod_uid(ns: Kubectl, pod: str) -> str:
    uid: str = ns.get_json("pod", pod)["metadata"]["uid"]
    return uid


def force_delete_pod(ns: Kubectl, pod: str) -> float:
    """``kubectl delete --force --grace-period=0``; returns the host time just before the delete."""
    t = time.time()
    ns.run("delete", "pod", pod, "--force", "--grace-period=0")
    return t


def kill_operator(kubectl: Kubectl) -> None:
    ops = kubectl.in_namespace(OPERATOR_NAMESPACE)
    ops.run("delete", "pod", "-l", OPERATOR_SELECTOR, "--force", "--grace-period=0")


def move_operator_off(kubectl: Kubectl, node: str) -> None:
    """Make sure the operator does not run on ``node`` (cordon it, re-create the operator's pod elsewhere,
    uncordon). The control plane must outlive the failure it repairs: a zone that takes the only operator
    replica with it leaves nobody to fail over until Kubernetes evicts the pod (minutes)."""
    ops = kubectl.in_namespace(OPERATOR_NAMESPACE)
    pods = ops.get_json("pods", "-l", OPERATOR_SELECTOR)["items"]
    if all(p["spec"].get("nodeName") != node for p in pods):
        return
    kubectl.run("cordon", node)
    try:
        ops.run("delete", "pod", "-l", OPERATOR_SELECTOR, "--wait=true")
        ops.run("rollout", "status", "deployment", "-l", OPERATOR_SELECTOR, "--timeout=120s", check=False)
        wait_for(
            "the operator running off " + node,
            lambda: any(
                p["spec"].get("nodeName") not in (None, node) and p["status"].get("phase") == "Running"
                for p in ops.get_json("pods", "-l", OPERATOR_SELECTOR)["items"]
            ),
            120,
        )
    finally:
        kubectl.run("uncordon", node)


def start_deleted_node(kubectl: Kubectl, node: str) -> None:
    """Start a stopped kind worker whose Node object was deleted, and wait until it is Ready with a pod
    network. Its kubelet registers a new Node, which gets the next free pod CIDR, while kube-router's
    bridge in the container keeps the old gateway address: every new pod there then fails with "kube-bridge
    already has an IP address different from ..." (a test-bed quirk; a machine that is really gone does not
    come back). The stale bridge is removed; the CNI bridge plugin re-creates it for the new range."""
    subprocess.run(["docker", "start", node], check=True, timeout=60)

    def cidr() -> str:
        try:
            return str(kubectl.get_json("node", node).get("spec", {}).get("podCIDR") or "")
        except KubectlError:
            return ""

    wait_for(f"node {node} registered with a pod CIDR", lambda: bool(cidr()), 180)
    kubectl.run("wait", "--for=condition=Ready", f"node/{node}", "--timeout=180s", timeout=200)
    gateway = " " + cidr().rsplit(".", 1)[0] + ".1/"

    def bridge_right() -> bool:
        shown = subprocess.run(["docker", "exec", node, "ip", "-4", "-o", "addr", "show", "kube-bridge"],
                               capture_output=True, text=True, timeout=30).stdout  # fmt: skip
        if shown and gateway not in shown:  # created (again) for the old range: remove it
            subprocess.run(["docker", "exec", node, "ip", "link", "delete", "kube-bridge"], timeout=30)
            return False
        return bool(shown)  # absent until the first pod there needs it

    wait_for(f"{node}'s pod bridge on its new range", bridge_right, 180, 1)
    refresh_pod_subnets(kubectl, cidr())


def refresh_pod_subnets(kubectl: Kubectl, new_cidr: str) -> None:
    """Make every node's kube-router know ``new_cidr`` as a pod range. kube-router keeps the pod CIDRs it
    saw at start in its ``kube-router-pod-subnets`` ipset; a re-registered node's new range is missing
    from the other nodes' set, so their pods' traffic to it is masqueraded to the node address and a
    NetworkPolicy on the re-joined node refuses it (a test-bed quirk, like the bridge). A restart of the
    DaemonSet rebuilds the sets."""
    nodes = [n["metadata"]["name"] for n in kubectl.get_json("nodes")["items"]]

    def known_everywhere() -> bool:
        for name in nodes:
            shown = subprocess.run(["docker", "exec", name, "ipset", "list", "kube-router-pod-subnets"],
                                   capture_output=True, text=True, timeout=30).stdout  # fmt: skip
            if new_cidr not in shown:
                return False
        return True

    if known_everywhere():
        return
    kube_system = kubectl.in_namespace("kube-system")
    kube_system.run("rollout", "restart", "daemonset/kube-router")
    kube_system.run("rollout", "status", "daemonset/kube-router", "--timeout=180s", timeout=200)
    wait_for(f"every node's kube-router routing {new_cidr} as pods", known_everywhere, 120, 2)


def wait_writer_changed(ns: Kubectl, name: str, old: str, timeout: float = 60) -> dict[str, Any]:
    """Until ``status.writer`` is another instance and the phase is Ready again; that status."""

    def changed() -> bool:
        st = status(ns, name)
        return st.get("writer") not in (None, old) and st.get("phase") == "Ready"

    return _wait(ns, name, f"a writer other than {old}, phase Ready", changed, timeout)


def wait_writer_moved(ns: Kubectl, name: str, old: str, timeout: float = 60) -> dict[str, Any]:
    """Until ``status.writer`` is another instance that reports itself a ready writer at the current term and
    the change is completed, whatever the phase (with a zone down the cluster is Degraded, never Ready: it
    lacks two storage nodes and a reader); that status."""

    def moved() -> bool:
        st = status(ns, name)
        writer = st.get("writer")
        if writer in (None, old) or st.get("failover"):
            return False
        mine = instance_status(st, writer)
        ready = mine.get("ready") is True and mine.get("term") == st.get("term")
        return ready and mine.get("role") == "writer"

    return _wait(ns, name, f"a ready writer other than {old} at the current term", moved, timeout)


def wait_failover_recorded(ns: Kubectl, name: str, old: str, timeout: float = 30) -> dict[str, Any]:
    """Until the operator has recorded a change of writer away from ``old`` (``status.failover`` set, not yet
    completed); that status. Polls as fast as kubectl answers: the record lives only until the change
    completes."""
    seen: dict[str, Any] = {}

    def recorded() -> bool:
        st = status(ns, name)
        if (st.get("failover") or {}).get("from") == old:
            seen.update(st)
            return True
        return False

    try:
        wait_for(f"{name}: a recorded writer change away from {old}", recorded, timeout, interval=0.1)
    except TimeoutError as err:
        raise TimeoutError(f"{err}; last status: {brief(status(ns, name))}") from err
    return seen


def wait_rejoined_as_reader(ns: Kubectl, name: str, instance: str, timeout: float = 180) -> dict[str, Any]:
    """Until ``instance`` reports itself a ready reader following the current term, and its pod carries the
    reader label; that status."""

    def rejoined() -> bool:
        st = status(ns, name)
        mine = instance_status(st, instance)
        label = ns.get_json("pod", instance_pod(instance))["metadata"]["labels"].get("quorumdb.io/role")
        return (
            mine.get("role") == "reader"
            and mine.get("ready") is True
            and mine.get("term") == st.get("term")
            and label == "reader"
        )

    return _wait(ns, name, f"{instance} back as a ready reader at the current term", rejoined, timeout)


def wait_for_annotation_removed(ns: Kubectl, name: str, key: str, timeout: float = 60) -> None:
    def removed() -> bool:
        return key not in ns.get_json("aurora", name)["metadata"].get("annotations", {})

    _wait(ns, name, f"annotation {key} removed", removed, timeout)


def event_count(ns: Kubectl, name: str, reason: str) -> int:
    """How many times Events of ``reason`` were reported on AuroraCluster ``name`` (repeats included)."""
    items = ns.get_json("events", "--field-selector", f"involvedObject.name={name},reason={reason}")["items"]
    return sum(
        int((e.get("series") or {}).get("count") or e.get("count") or 1)
        for e in items
        if e.get("involvedObject", {}).get("kind") == "AuroraCluster"
    )


@dataclass(frozen=True)
class Sample:
    t: float
    writer_pods: tuple[str, ...]
    """Pods labelled ``quorumdb.io/role=writer`` as ``name/uid`` (terminating ones included)."""
    status_writer: str | None


class Sampler:
    """A background thread that runs ``_run`` (which loops until ``_stop``) while the ``with`` block runs."""

    def __init__(self, ns: Kubectl, name: str, interval: float) -> None:
        self.ns = ns
        self.name = name
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{type(self).__name__}-{name}", daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(30)


class WriterLabels(Sampler):
    """Samples every ``interval`` seconds, in a thread, which pods carry the writer label and what
    ``status.writer`` says. A sampler: an overlap shorter than the interval can go unseen."""

    def __init__(self, ns: Kubectl, name: str, interval: float = 0.5) -> None:
        super().__init__(ns, name, interval)
        self.samples: list[Sample] = []
        self.failed_samples = 0

    def _sample(self) -> Sample:
        pods = self.ns.get_json("pods", "-l", f"quorumdb.io/cluster={self.name},{WRITER_LABEL}")["items"]
        writers = tuple(sorted(f"{p['metadata']['name']}/{p['metadata']['uid']}" for p in pods))
        return Sample(time.time(), writers, status(self.ns, self.name).get("writer"))

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.samples.append(self._sample())
            except (KubectlError, KeyError, ValueError):
                self.failed_samples += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def overlaps(self) -> list[Sample]:
        """Samples with more than one writer-labelled pod."""
        return [s for s in self.samples if len(s.writer_pods) > 1]

    def writer_sequence(self) -> list[str]:
        """Distinct consecutive values of ``status.writer`` over the samples (unset ones skipped)."""
        seq: list[str] = []
        for s in self.samples:
            if s.status_writer and (not seq or seq[-1] != s.status_writer):
                seq.append(s.status_writer)
        return seq

    def summary(self) -> str:
        most = max((len(s.writer_pods) for s in self.samples), default=0)
        return (f"{len(self.samples)} samples ({self.failed_samples} failed) every {self.interval}s, "
                f"at most {most} writer-labelled pod(s), status.writer {self.writer_sequence()}")  # fmt: skip


SOCKET_DIR = "/var/lib/quorumdb/data/run"
"""The instance manager's private socket directory inside an instance container (local trust)."""


def psql(ns: Kubectl, cluster: str, sql: str, database: str = "app") -> str:
    """Run ``sql`` on the writer as the superuser through its private socket (``kubectl exec``), one
    statement per transaction (``psql -f -``); the unaligned, tuples-only output."""
    writer = status(ns, cluster).get("writer") or f"{cluster}-instance-0"
    return ns.run(
        "exec", "-i", instance_pod(writer), "--", "psql", "-X", "-v", "ON_ERROR_STOP=1", "-At",
        "-h", SOCKET_DIR, "-U", "postgres", "-d", database, "-f", "-", stdin=sql,
    )  # fmt: skip


def minio_credentials(ns: Kubectl) -> None:
    """The Secret ``minio-credentials`` for the test bed's MinIO in ``ns`` (``e2e/testbed/minio.sh``)."""
    assert ns.namespace is not None
    subprocess.run([str(ROOT / "e2e/testbed/minio.sh"), "secret", ns.namespace], check=True,
                   capture_output=True, env={**os.environ, "KUBECONFIG": ns.kubeconfig})  # fmt: skip


def condition(st: dict[str, Any], type_: str) -> dict[str, Any]:
    found: dict[str, Any] = next((c for c in st.get("conditions", []) if c.get("type") == type_), {})
    return found


def restored(
    name: str, source: str, point_in_time: str | None = None, readers: int = 0, snapshot: str | None = None
) -> dict[str, Any]:
    """A cluster restored from ``source``'s backups (the demo cluster's object store, encrypted with the
    key in Secret ``backup-key``): to a time, to the latest restorable time, or from an AuroraSnapshot."""
    manifest = demo(readers, backup=True)
    manifest["metadata"] = {"name": name}
    restore: dict[str, Any] = {"sourceCluster": source}
    if point_in_time is not None:
        restore["pointInTime"] = point_in_time
    if snapshot is not None:
        restore["snapshot"] = snapshot
    manifest["spec"]["restore"] = restore
    manifest["spec"]["backup"]["encryption"] = {"keySecret": {"name": "backup-key"}}
    return manifest


def tag_image_on_nodes(kubectl: Kubectl, source: str, target: str) -> None:
    """Give the image ``source`` (already loaded on every kind node) a second name ``target`` in each node's
    containerd: a "new" image for a rolling update without a registry (same bits, another reference)."""
    tagged = 0
    for node in kubectl.get_json("nodes")["items"]:
        name = node["metadata"]["name"]
        ctr = ["docker", "exec", name, "ctr", "-n", "k8s.io", "images"]
        listed = subprocess.run([*ctr, "ls", "-q"], check=True, capture_output=True, text=True, timeout=60)
        if source not in listed.stdout.split():
            continue  # a node the image was not loaded on (the control plane): no database pod runs there
        subprocess.run([*ctr, "tag", "--force", source, target], check=True, capture_output=True, timeout=60)
        tagged += 1
    if not tagged:
        raise RuntimeError(f"image {source} is on no node (run `make image`)")


def cluster_pods(ns: Kubectl, name: str) -> dict[str, dict[str, Any]]:
    """The cluster's storage and instance pods by name."""
    items = ns.get_json("pods", "-l", f"quorumdb.io/cluster={name}")["items"]
    return {p["metadata"]["name"]: p for p in items if p["metadata"].get("labels", {}).get(
        "quorumdb.io/component") in ("storage", "instance")}  # fmt: skip


def revision(pod: dict[str, Any]) -> str:
    return str(pod["metadata"].get("annotations", {}).get("quorumdb.io/revision", ""))


class PodLives(Sampler):
    """Samples every ``interval`` seconds, in a thread, the UID of each of the cluster's pods: how many
    times each pod was re-created while it ran (a sampler: a pod re-created twice between two samples
    counts once)."""

    def __init__(self, ns: Kubectl, name: str, interval: float = 1.0) -> None:
        super().__init__(ns, name, interval)
        self.uids: dict[str, list[str]] = {}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for pod_name, pod in cluster_pods(self.ns, self.name).items():
                    seen = self.uids.setdefault(pod_name, [])
                    if not seen or seen[-1] != pod["metadata"]["uid"]:
                        seen.append(pod["metadata"]["uid"])
            except (KubectlError, KeyError, ValueError):
                pass
            self._stop.wait(self.interval)

    def restarts(self) -> dict[str, int]:
        """Pod name -> times it was re-created since sampling started."""
        return {name: len(uids) - 1 for name, uids in sorted(self.uids.items())}


def wait_maintenance(ns: Kubectl, name: str, state: str, timeout: float) -> dict[str, Any]:
    """Until ``status.maintenance.state`` is ``state``."""
    return _wait(ns, name, f"maintenance {state}",
                 lambda: status(ns, name).get("maintenance", {}).get("state") == state, timeout)  # fmt: skip
