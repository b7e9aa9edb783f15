"""Background write load for the end-to-end failover tests: pgbench against the cluster endpoint, restarted
whenever it exits (a failover kills its connections) until the stop file exists or ``--max-seconds`` pass.

Shipped in the workload's ConfigMap next to ``audit_client.py`` and run in a second container of the same
pod (they share ``/tmp``, so one stop file stops both). It only adds load: nothing it does is audited, and
it must not touch the ``audit`` table. Connection parameters come from libpq's environment (``PGHOST``...).
Lines it prints: ``init <t> <rc>``, ``pgbench <t> rc=<rc> <seconds>s``, ``done <t> <runs>``, plus pgbench's
own output (``progress: <unix time> s, <tps> tps, ...`` every 5 s).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import psycopg

RETRY_INTERVAL = 0.2


def initialised() -> bool:
    """True once ``pgbench -i`` has finished: its last step creates the accounts primary key."""
    try:
        with psycopg.connect(autocommit=True, connect_timeout=1) as conn:
            row = conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'pgbench_accounts_pkey'")
            found = row.fetchone()
            return bool(found and found[0])
    except psycopg.Error:
        return False


def run_until(cmd: list[str], stop_file: str, deadline: float) -> int:
    """Run ``cmd``; interrupt it when the stop file appears or the deadline passes. Its exit code."""
    proc = subprocess.Popen(cmd)
    while proc.poll() is None:
        if os.path.exists(stop_file) or time.monotonic() > deadline:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            break
        time.sleep(0.2)
    return proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pgbench, restarted after every failure, until stopped")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--stop-file", default="/tmp/stop")
    args = parser.parse_args(argv)
    os.environ.setdefault("PGCONNECT_TIMEOUT", "1")
    deadline = time.monotonic() + args.max_seconds
    runs = 0
    ready = False
    while not os.path.exists(args.stop_file) and time.monotonic() < deadline:
        if not ready:
            ready = initialised()
            if not ready:
                rc = run_until(["pgbench", "-i", "-q", "-s", str(args.scale)], args.stop_file, deadline)
                print("init", time.time(), rc, flush=True)
                ready = rc == 0
                if not ready:
                    time.sleep(RETRY_INTERVAL)
                continue
        seconds = max(1, int(deadline - time.monotonic()))
        started = time.monotonic()
        cmd = ["pgbench", "-n", "-c", str(args.clients), "-j", "1", "-T", str(seconds), "-P", "5",
               "--progress-timestamp"]  # fmt: skip
        rc = run_until(cmd, args.stop_file, deadline)
        runs += 1
        print("pgbench", time.time(), f"rc={rc}", f"{time.monotonic() - started:.1f}s", flush=True)
        if rc != 0:
            time.sleep(RETRY_INTERVAL)
    print("done", time.time(), runs, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
