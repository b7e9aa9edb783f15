"""Data API benchmark: statements per second through the Data API (boto3's ``rds-data`` client, SigV4,
HTTP, JSON, the service's pooled connections) as a ratio to the same statements through psycopg directly
(one open connection per client), measured in the same run on the same local PostgreSQL.

A script, not a test: `make bench-data-api`. Workloads: a one-row SELECT with one bound parameter, and an
INSERT with two; 1 and 8 concurrent clients; repetitions interleaved (direct, Data API, direct, ...) so
drift affects both alike. Prints each measurement and the ratios (median over repetitions).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from aurora_api import contract  # noqa: E402

from tests.data_api import server  # noqa: E402
from tests.fixtures import availability  # noqa: E402
from tests.fixtures.postgres import PG_USER, PgCluster, _make_root, make_template  # noqa: E402

IDS = itertools.count(1)
"""Row ids, unique across clients and runs (``next`` on a count is atomic under the GIL)."""
ARN = "arn:aws:rds:local:0:cluster:demo"
SECRET = "arn:aws:secretsmanager:local:0:secret:bench"
WORKLOADS: dict[str, tuple[str, Callable[[int], dict[str, Any]]]] = {
    "select": ("SELECT :id::int AS id, 'row' AS v", lambda i: {"id": i}),
    "insert": ("INSERT INTO bench (id, v) VALUES (:id, :v)", lambda i: {"id": i, "v": f"value {i}"}),
}


def direct(pg: PgCluster, workload: str, clients: int, seconds: float) -> float:
    text, make = WORKLOADS[workload]
    sql = text.replace(":id", "%(id)s").replace(":v", "%(v)s")

    def worker(index: int, stop: float, counts: list[int]) -> None:
        with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
            while time.monotonic() < stop:
                cur = conn.execute(sql, make(next(IDS)))
                if workload == "select":
                    cur.fetchall()
                counts[index] += 1

    return _run(worker, clients, seconds)


def via_api(endpoint: str, workload: str, clients: int, seconds: float) -> float:
    sql, make = WORKLOADS[workload]

    def params(values: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"name": k, "value": {"longValue": v} if isinstance(v, int) else {"stringValue": v}}
            for k, v in values.items()
        ]

    def worker(index: int, stop: float, counts: list[int]) -> None:
        rds: Any = server.client(endpoint)
        while time.monotonic() < stop:
            rds.execute_statement(
                resourceArn=ARN, secretArn=SECRET, sql=sql, parameters=params(make(next(IDS)))
            )
            counts[index] += 1

    return _run(worker, clients, seconds)


def _run(worker: Callable[[int, float, list[int]], None], clients: int, seconds: float) -> float:
    counts = [0] * clients
    stop = time.monotonic() + seconds
    threads = [threading.Thread(target=worker, args=(i, stop, counts)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


@contextlib.contextmanager
def serving(pg: PgCluster, secrets: Path) -> Iterator[str]:
    """The Data API as it runs in its pod: a process of its own (``quorumdb-data-api``), so that its work
    and the clients' never share an interpreter."""
    keys = secrets.parent / f"{secrets.name}-keys"
    keys.mkdir()
    (keys / "accessKeyId").write_text(server.KEY)
    (keys / "secretAccessKey").write_text(server.SECRET_KEY)
    port = availability.free_port()
    E = contract.EnvDataApi
    env = {
        **os.environ, contract.Env.CLUSTER_NAME: "demo",
        E.DATABASE_HOST: pg.host, E.DATABASE_PORT: str(pg.port),
        E.KEYS_DIR: str(keys), E.SECRETS_DIR: str(secrets), E.LISTEN: "127.0.0.1", E.PORT: str(port),
        "PYTHONPATH": os.pathsep.join([str(REPO / "operator"), str(REPO / "storage-engine")]),
    }  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "aurora_data_api.main"], env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the Data API did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(keys, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--clients", default="1,8")
    a = p.parse_args(argv)
    template = make_template()
    root = _make_root()
    subprocess.run(["cp", "-a", str(template), str(root / "data")], check=True)
    pg = PgCluster(root, availability.free_port())
    pg.configure({"max_connections": "100"})
    pg.start()
    secrets = Path(tempfile.mkdtemp(prefix="quorumdb-bench-secrets-"))
    server.write_secret(secrets, "bench", PG_USER, "unused", "postgres")
    with pg.connect() as conn:
        conn.execute("CREATE TABLE bench (id bigint PRIMARY KEY, v text)")
    results: dict[tuple[str, int, str], list[float]] = {}
    try:
        with serving(pg, secrets) as endpoint:
            for clients in (int(c) for c in a.clients.split(",")):
                for workload in WORKLOADS:
                    for rep in range(a.reps):
                        for how in ("psycopg", "data-api"):
                            rate = (direct(pg, workload, clients, a.seconds) if how == "psycopg"
                                    else via_api(endpoint, workload, clients, a.seconds))  # fmt: skip
                            results.setdefault((workload, clients, how), []).append(rate)
                            print(f"{workload:6} clients={clients} rep={rep + 1} {how:8}: {rate:8.0f} stmt/s",
                                  flush=True)  # fmt: skip
    finally:
        pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(template.parent, ignore_errors=True)
        shutil.rmtree(secrets, ignore_errors=True)
    print("\nstatements per second (median of repetitions), Data API as a ratio to psycopg direct:")
    for workload in WORKLOADS:
        for clients in (int(c) for c in a.clients.split(",")):
            base = statistics.median(results[(workload, clients, "psycopg")])
            api = statistics.median(results[(workload, clients, "data-api")])
            print(f"  {workload:6} {clients} client(s): psycopg {base:8.0f}/s, Data API {api:7.0f}/s "
                  f"= {api / base:.3f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
