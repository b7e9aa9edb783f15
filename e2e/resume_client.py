"""The client of the pause/resume scenarios, run inside the cluster (shipped in a ConfigMap by
``e2e/pausing.py``; run with the image's ``/opt/quorumdb/bin/python`` through ``kubectl exec``).

Why in the cluster: a resume is timed the way an application sees it, from its connect through the
``<cluster>`` Service to its first answered query, with no ``kubectl`` in the measured path. ``probe`` prints
one JSON line: the seconds from connect to the first answer, the server it reached, and the ids of the
``--commits`` rows it got acknowledged (one autocommit INSERT each, into ``pause_audit``; a commit that
returned with a warning is not acknowledged). ``ids`` prints every id in the table (for the audit).

Connection parameters come from libpq's environment. It must use only the standard library and psycopg.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import psycopg

CREATE = "CREATE TABLE IF NOT EXISTS pause_audit (id bigint PRIMARY KEY, at timestamptz DEFAULT now())"
CONNECT_TIMEOUT = 60


def probe(commits: int) -> dict[str, object]:
    started = time.monotonic()
    warnings: list[str] = []
    with psycopg.connect(connect_timeout=CONNECT_TIMEOUT, autocommit=True,
                         application_name="quorumdb-e2e-resume") as conn:  # fmt: skip
        row = conn.execute("SELECT coalesce(host(inet_server_addr()), 'local')").fetchone()
        answered = time.monotonic() - started
        conn.add_notice_handler(lambda d: warnings.append(str(d.message_primary)))
        conn.execute(CREATE)
        top = conn.execute("SELECT coalesce(max(id), 0) FROM pause_audit").fetchone()
        next_id = int(top[0]) + 1 if top else 1
        acked = []
        for i in range(next_id, next_id + commits):
            warnings.clear()
            conn.execute("INSERT INTO pause_audit (id) VALUES (%s)", (i,))
            if not warnings:
                acked.append(i)
    return {"resume_seconds": answered, "server": row[0] if row else None, "acked": acked}


def ids() -> list[int]:
    with psycopg.connect(connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
        conn.execute(CREATE)
        return [int(r[0]) for r in conn.execute("SELECT id FROM pause_audit ORDER BY id").fetchall()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--commits", type=int, default=20)
    sub.add_parser("ids")
    args = parser.parse_args(argv)
    result: object = probe(args.commits) if args.mode == "probe" else ids()
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
