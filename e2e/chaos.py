"""`make chaos`: repeated writer-pod force-deletions on one cluster under the audited workload, on the kind
test bed. A script, not a test: it prints each run and then the distribution of the failover outage (kill ->
first acknowledged commit: p50, p90, p99, max) and the total acknowledged and missing commits. With
``--switchover`` each run asks for a switchover (annotation ``any``) instead, and the distribution is of the
write unavailability (last commit acknowledged before the request's disruption -> first one after). With
``--node-stop`` each run stops the writer's kind worker (``docker stop``; the operator and the client are
moved off it first), measures from there, and starts it again; the old writer must rejoin as a reader.
With ``--patch`` each run changes the image (alternating between the test image and a second name for it)
and applies it now: a rolling update of every pod with one switchover; the distribution is of the longest
gap between acknowledged commits during the roll, and the roll's duration is printed.

Each run starts a fresh workload pod (one audit log per run keeps it far from the kubelet's log rotation),
lets it write for ``--load-seconds``, force-deletes the current writer's pod, waits for another writer and
phase Ready, keeps writing for ``--after-seconds``, audits every acknowledged commit, and waits for the old
writer to rejoin as a ready reader before the next run. A thread samples the writer label throughout.
Exit status 1 when a commit was lost, two pods were labelled writer at once, or a run did not complete.

Needs `make cluster image` (the Makefile target runs them); installs the operator with Helm like the e2e
suite does, in a namespace of its own that it deletes afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import math
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import aurora
from kube import Kubectl, KubectlError, default_kubeconfig
from workload import AuditLog, Workload

NAME = "demo"
SWITCHOVER_ANNOTATION = "quorumdb.io/switchover"
PATCHED = aurora.IMAGE.rpartition(":")[0] + ":patched"


@dataclass(frozen=True)
class Run:
    number: int
    old: str
    new: str
    term: int
    outage: float
    decided: float
    """Kill -> the operator recorded its decision (``lastFailover.startedAt``)."""
    completed: float
    """Kill -> the operator saw the new writer report itself writer (``lastFailover.completedAt``)."""
    acked: int
    missing: int
    roll: float | None = None
    """--patch: the image change -> every pod up to date (``status.maintenance.state`` UpToDate)."""

    def describe(self) -> str:
        if self.roll is not None:
            return (f"roll {self.roll:.0f}s, switchover {self.old} -> {self.new} (term {self.term}), "
                    f"longest write gap {self.outage:.2f}s, acknowledged {self.acked}, "
                    f"missing {self.missing}")  # fmt: skip
        return (f"{self.old} -> {self.new} (term {self.term}): outage {self.outage:.2f}s "
                f"(decided after {self.decided:.2f}s, completion seen after {self.completed:.2f}s), "
                f"acknowledged {self.acked}, missing {self.missing}")  # fmt: skip


def client_view(log: AuditLog, t_kill: float) -> str:
    """What the audit client saw after the kill: each kind of error with its count and first/last time."""
    kinds: dict[str, list[float]] = {}
    for t, message in log.errors:
        if t >= t_kill:
            kinds.setdefault(message[:130], []).append(t - t_kill)
    return "; ".join(f"{len(ts)}x {kind!r} {ts[0]:.2f}-{ts[-1]:.2f}s" for kind, ts in kinds.items())


def promotion_view(ns: Kubectl, writer: str) -> str:
    """How the new writer's promotion went, from its own log (the pod is deleted by the next run): where
    it took the quorum's tail segment from, and the promotion's step timings."""
    log = ns.run("logs", aurora.instance_pod(writer), "--tail=-1", check=False)
    markers = ("fetching the quorum's tail segment", "tail segment ", "already replayed", "promote done")
    lines = [line for line in log.splitlines() if any(m in line for m in markers)]
    return " | ".join(line.split(": ", 1)[-1] for line in lines[-2:]) or "no promotion in its log"


def since(t_kill: float, stamp: str) -> float:
    """Seconds from the host time ``t_kill`` to an RFC 3339 time written by the operator (same clock)."""
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - t_kill


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def longest_gap(log: AuditLog, start: float, end: float) -> float:
    times = sorted(t for t in log.acks.values() if start <= t <= end)
    return max((b - a for a, b in itertools.pairwise(times)), default=end - start)


def patch_run(ns: Kubectl, number: int, args: argparse.Namespace) -> Run:
    """One rolling update to the other image name, under the workload."""
    before = aurora.wait_ready(ns, NAME, timeout=420)
    image = PATCHED if number % 2 else aurora.IMAGE
    load = Workload.start(ns, NAME, name=f"workload-{number}", pgbench=not args.no_pgbench)
    try:
        time.sleep(args.load_seconds)
        t_patch = time.time()
        spec = f'{{"spec": {{"engine": {{"image": "{image}"}}}}}}'
        ns.run("patch", "aurora", NAME, "--type", "merge", "-p", spec)
        ns.run("annotate", "aurora", NAME, "quorumdb.io/apply-pending-maintenance=now")
        aurora.wait_maintenance(ns, NAME, "Rolling", 60)
        after = aurora.wait_maintenance(ns, NAME, "UpToDate", 900)
        t_done = time.time()
        time.sleep(args.after_seconds)
        result = load.audit()
        gap = longest_gap(load.read(), t_patch, t_done)
        if args.verbose:
            print(f"  run {number} client: {client_view(load.read(), t_patch)}", flush=True)
    finally:
        load.delete()
    change = after["lastFailover"]
    return Run(number, before["writer"], after["writer"], int(after["term"]), gap,
               since(t_patch, change["startedAt"]), since(t_patch, change["completedAt"]), len(result.acked),
               len(result.missing), roll=t_done - t_patch)  # fmt: skip


def one_run(ns: Kubectl, kubectl: Kubectl, number: int, args: argparse.Namespace) -> Run:
    before = aurora.wait_ready(ns, NAME, timeout=420)
    old = before["writer"]
    # --node-stop: the writer's kind worker is stopped; the operator and the client must not be on it.
    node = ns.get_json("pod", aurora.instance_pod(old))["spec"]["nodeName"] if args.node_stop else None
    if node is not None:
        aurora.move_operator_off(kubectl, node)
    load = Workload.start(ns, NAME, name=f"workload-{number}", pgbench=not args.no_pgbench, avoid_node=node)
    try:
        time.sleep(args.load_seconds)
        if args.switchover:
            t_kill = time.time()
            ns.run("annotate", "aurora", NAME, f"{SWITCHOVER_ANNOTATION}=any")
        elif node is not None:
            t_kill = time.time()
            subprocess.run(["docker", "stop", "-t", "0", node], check=True, timeout=60)
        else:
            t_kill = aurora.force_delete_pod(ns, aurora.instance_pod(old))
        if node is not None:  # a zone is down: the cluster is Degraded, never Ready, until it returns
            after = aurora.wait_writer_moved(ns, NAME, old, timeout=90)
        else:
            after = aurora.wait_writer_changed(ns, NAME, old, timeout=60)
        time.sleep(args.after_seconds)
        result = load.audit()
        # A failover's outage runs from the kill; a switchover's unavailability from the last commit the
        # old writer acknowledged to the first the new one did (the request itself disturbs nothing).
        outage = load.unavailability_after(t_kill) if args.switchover else load.outage_after(t_kill)
        if args.verbose:
            print(f"  run {number} client: {client_view(load.read(), t_kill)}", flush=True)
            print(f"  run {number} promotion: {promotion_view(ns, after['writer'])}", flush=True)
    finally:
        load.delete()
        if node is not None:
            subprocess.run(["docker", "start", node], check=True, timeout=60)
    if result.missing:
        print(f"  run {number}: lost ids {sorted(result.missing)[:20]}", flush=True)
    aurora.wait_rejoined_as_reader(ns, NAME, old, timeout=300 if node else 180)
    new, term, change = after["writer"], int(after["term"]), after["lastFailover"]
    decided, completed = since(t_kill, change["startedAt"]), since(t_kill, change["completedAt"])
    return Run(number, old, new, term, outage, decided, completed, len(result.acked), len(result.missing))


def summary(runs: Sequence[Run], switchover: bool = False, node_stop: bool = False) -> str:
    outages = [r.outage for r in runs]
    if not outages:
        return "no completed run"
    rolls = [r.roll for r in runs if r.roll is not None]
    if rolls:
        return (
            f"rolling update (image change, applied now), longest write gap over {len(runs)} runs: "
            f"p50 {percentile(outages, 50):.2f}s, p90 {percentile(outages, 90):.2f}s, "
            f"max {max(outages):.2f}s\n"
            f"roll duration: p50 {percentile(rolls, 50):.0f}s, max {max(rolls):.0f}s\n"
            f"acknowledged commits audited: {sum(r.acked for r in runs)}, "
            f"missing: {sum(r.missing for r in runs)}"
        )
    if switchover:
        what = "switchover write unavailability (last acknowledged commit before -> first after)"
    elif node_stop:
        what = "failover outage (writer's node stopped -> first acknowledged commit)"
    else:
        what = "failover outage (kill -> first acknowledged commit)"
    return (
        f"{what} over {len(runs)} runs: "
        f"p50 {percentile(outages, 50):.2f}s, p90 {percentile(outages, 90):.2f}s, "
        f"p99 {percentile(outages, 99):.2f}s, max {max(outages):.2f}s\n"
        f"disruption -> decision recorded: p50 {percentile([r.decided for r in runs], 50):.2f}s, "
        f"max {max(r.decided for r in runs):.2f}s\n"
        f"acknowledged commits audited: {sum(r.acked for r in runs)}, missing: {sum(r.missing for r in runs)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Writer-pod force-deletions in a row, audited.")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--load-seconds", type=float, default=10.0, help="workload before each kill")
    parser.add_argument("--after-seconds", type=float, default=10.0, help="workload after each failover")
    parser.add_argument("--namespace", default=f"chaos-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--keep", action="store_true", help="keep the namespace (and cluster) afterwards")
    parser.add_argument("--no-pgbench", action="store_true", help="audit writer only, no pgbench load")
    parser.add_argument("--switchover", action="store_true", help="switchovers on request instead of kills")
    parser.add_argument(
        "--node-stop",
        action="store_true",
        help="stop the writer's kind worker (docker stop) instead of a kill",
    )
    parser.add_argument("--patch", action="store_true", help="rolling updates (image changes) instead")
    parser.add_argument("--verbose", action="store_true", help="print what the client saw in each run")
    parser.add_argument("--skip-install", action="store_true", help="the operator is already installed")
    args = parser.parse_args(argv)

    kubectl = Kubectl(default_kubeconfig())
    try:
        kubectl.run("get", "--raw", "/readyz", timeout=20)
    except (KubectlError, OSError) as err:
        print(f"no reachable test-bed cluster ({err}); run `make cluster image`", file=sys.stderr)
        return 2
    if not args.skip_install:
        aurora.install_operator(kubectl)
    if args.patch:
        aurora.tag_image_on_nodes(kubectl, aurora.IMAGE, PATCHED)
    kubectl.run("create", "namespace", args.namespace)
    ns = kubectl.in_namespace(args.namespace)
    runs: list[Run] = []
    failure: str | None = None
    started = time.monotonic()
    try:
        ns.apply([aurora.demo()])
        aurora.wait_ready(ns, NAME, timeout=300)
        print(f"namespace {args.namespace}: {NAME} Ready after {time.monotonic() - started:.0f}s", flush=True)
        with aurora.WriterLabels(ns, NAME) as labels:
            for number in range(1, args.runs + 1):
                try:
                    run = patch_run(ns, number, args) if args.patch else one_run(ns, kubectl, number, args)
                except (TimeoutError, KubectlError, AssertionError, ValueError) as err:
                    failure = f"run {number} did not complete: {err}"
                    print(failure, flush=True)
                    break
                runs.append(run)
                print(f"run {number}/{args.runs}: {run.describe()}", flush=True)
        print(f"writer labels: {labels.summary()}")
        overlaps = labels.overlaps()
        if overlaps:
            failure = f"two writer-labelled pods at once: {overlaps[:5]}"
    finally:
        print(summary(runs, args.switchover, args.node_stop), flush=True)
        if args.keep:
            print(f"kept namespace {args.namespace}")
        else:
            kubectl.run("delete", "namespace", args.namespace, "--wait=false", check=False)
    if failure:
        print(f"FAILED: {failure}")
    lost = sum(r.missing for r in runs)
    return 1 if failure or lost or len(runs) < args.runs else 0


if __name__ == "__main__":
    sys.exit(main())
