"""`make chaos-pause`: auto-pause and resume cycles in a row on one serverless cluster on the kind test bed.
A script, not a test: it prints each cycle and then the distribution of the resume time (a client's connect
through the cluster endpoint -> its first answered query, measured in the client pod: p50, p90, p99, max),
and the total acknowledged and missing commits (every acknowledged id is looked for at the end).

Each cycle waits until the cluster has paused by itself (``secondsUntilAutoPause`` without a client: phase
Paused, PostgreSQL stopped, requests released), connects and commits ``--commits`` rows, and waits for the
cluster to report Ready again. Exit status 1 when a commit was lost or a cycle did not complete.

Needs `make cluster image` (the Makefile target runs them); installs the operator with Helm like the e2e
suite does, in a namespace of its own that it deletes afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import sys
import uuid

import aurora
import pausing
from kube import Kubectl, default_kubeconfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--idle-seconds", type=int, default=pausing.IDLE_SECONDS)
    parser.add_argument("--keep", action="store_true", help="keep the namespace afterwards")
    args = parser.parse_args(argv)
    kubectl = Kubectl(default_kubeconfig())
    aurora.install_operator(kubectl)
    namespace = f"chaos-pause-{uuid.uuid4().hex[:6]}"
    kubectl.run("create", "namespace", namespace)
    ns = kubectl.in_namespace(namespace)
    resumes: list[float] = []
    acked: set[int] = set()
    try:
        ns.apply([pausing.manifest(idle_seconds=args.idle_seconds)])
        aurora.wait_ready(ns, pausing.NAME)
        pausing.start_client(ns)
        acked |= set(pausing.run_client(ns, "probe", "--commits", str(args.commits))["acked"])
        for run in range(1, args.runs + 1):
            c = pausing.cycle(ns, commits=args.commits)
            resumes.append(c.resume_seconds)
            acked |= set(c.acked)
            print(f"cycle {run}: paused {c.paused_after:.1f}s after the last client; resumed in "
                  f"{c.resume_seconds:.3f}s; {len(c.acked)} commits acknowledged; Ready again "
                  f"{c.resumed_after:.1f}s after the connect", flush=True)  # fmt: skip
        missing = pausing.audit(ns, acked)
    finally:
        if not args.keep:
            kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)
    print(pausing.distribution("resume (connect -> first answer, through the cluster endpoint)", resumes))
    print(f"commits: {len(acked)} acknowledged, {len(missing)} missing")
    return 1 if missing or len(resumes) < args.runs else 0


if __name__ == "__main__":
    sys.exit(main())
