"""Benchmark: pgbench with no replication, one synchronous standby, and QuorumDB's 4-of-6 storage nodes.

Why it exists: the product's cost must be measured side by side with what users run today (one
synchronous streaming standby, as CloudNativePG and Patroni deploy) and with no replication at all, in
one run on one machine, interleaving configurations so that background noise hits all of them alike.
It prints TPS, p50/p99 transaction latency (from pgbench's per-transaction log), the ratios, and CPU per
committed transaction for the writer, the standby and the storage nodes (from /proc). It is a script,
not a test: it asserts nothing.

    .venv/bin/python storage-engine/bench/quorum_bench.py --duration 30 --reps 3 --clients 1,8 --scale 10

``--configs`` also takes ``quorum-pgrw`` (the node supervising ``pg_receivewal --synchronous`` instead of
``quorumdb-walrecv``), ``walrecv`` and ``receivewal`` (six bare receivers, no node: the research baseline),
which separate the receiver's cost from the node supervisor's.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from aurora_api import contract  # noqa: E402
from aurora_api import control as api_control  # noqa: E402
from aurora_storage import quorum, slots  # noqa: E402

from tests.fixtures import availability, control, walrecv  # noqa: E402
from tests.fixtures.postgres import BASE_SETTINGS, PG_BIN, PgCluster, _as_pg, _make_root  # noqa: E402

log = logging.getLogger("quorum_bench")
CLK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: Iterable[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (
            int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        )  # utime stime cutime cstime
    return total / CLK


def _tree(root_pid: int | None) -> list[int]:
    if root_pid is None:
        return []
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root_pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


@dataclass
class Setup:
    name: str
    writer: PgCluster
    extra_roots: list[int] = field(default_factory=list)  # pids whose process trees are "replicas"
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    cleanup_dirs: list[Path] = field(default_factory=list)

    def replica_pids(self) -> list[int]:
        pids: list[int] = []
        for p in self.procs:
            pids += _tree(p.pid)
        for r in self.extra_roots:
            pids += _tree(r)
        return pids

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        self.writer.stop("immediate")
        for d in [self.writer.root, *self.cleanup_dirs]:
            shutil.rmtree(d, ignore_errors=True)


def _new_writer(template: Path, settings: dict[str, str]) -> PgCluster:
    root = _make_root()
    subprocess.run(["cp", "-a", str(template), str(root / "data")], check=True)
    c = PgCluster(root, availability.free_port())
    c.configure({**settings, "max_wal_size": "8GB", "checkpoint_timeout": "1d", "shared_buffers": "512MB"})
    c.start()
    return c


def _pgbench_init(c: PgCluster, scale: int) -> None:
    subprocess.run(
        [
            str(PG_BIN / "pgbench"),
            "-i",
            "-q",
            "-s",
            str(scale),
            "-h",
            c.host,
            "-p",
            str(c.port),
            "-U",
            "postgres",
            "postgres",
        ],
        check=True,
        capture_output=True,
    )
    with c.connect() as conn:
        conn.execute("CHECKPOINT")


def setup_none(template: Path) -> Setup:
    return Setup("none", _new_writer(template, {"synchronous_standby_names": ""}))


def setup_standby(template: Path) -> Setup:
    w = _new_writer(template, {"synchronous_standby_names": "ANY 1 (standby)", "synchronous_commit": "on"})
    sroot = _make_root()
    subprocess.run(
        _as_pg(
            [
                str(PG_BIN / "pg_basebackup"),
                "-h",
                w.host,
                "-p",
                str(w.port),
                "-U",
                "postgres",
                "-D",
                str(sroot / "data"),
                "-X",
                "stream",
                "-c",
                "fast",
                "-R",
            ]
        ),
        check=True,
        capture_output=True,
    )
    sb = PgCluster(sroot, availability.free_port())
    # pg_basebackup -R wrote primary_conninfo into postgresql.auto.conf, which wins over postgresql.conf.
    with (sb.datadir / "postgresql.auto.conf").open("a") as fh:
        fh.write(f"primary_conninfo = 'host={w.host} port={w.port} user=postgres application_name=standby'\n")
    sb.start()
    s = Setup("standby", w, cleanup_dirs=[sroot])
    s.extra_roots.append(sb.pid or 0)
    s._standby = sb  # type: ignore[attr-defined]
    return s


# The storage-node configurations: the node (Python supervisor) around either receiver, and each receiver
# bare (six processes, no node), which isolates the supervisor's own cost.
QUORUM_KINDS = {
    "quorum": ("node", "walrecv"),
    "quorum-pgrw": ("node", "pg_receivewal"),
    "walrecv": ("bare", "walrecv"),
    "receivewal": ("bare", "pg_receivewal"),
}


def setup_quorum(template: Path, name: str = "quorum", linger_us: int = 0) -> Setup:
    form, receiver = QUORUM_KINDS[name]
    w = _new_writer(template, slots.writer_settings(term=1))
    with w.connect() as conn:
        slots.ensure_slots(conn)
    root = Path(tempfile.mkdtemp(prefix="quorumdb-bench-"))
    token = control.write_token(root / "secrets")  # the nodes read it at start-up
    ports = availability.free_ports(6)
    peers = ",".join(f"127.0.0.1:{p}" for p in ports)
    s = Setup(name, w, cleanup_dirs=[root])
    for i in range(6):
        logf = (root / f"node{i}.log").open("ab")
        dsn = f"host={w.host} port={w.port} user=postgres application_name={quorum.node_name(i)}"
        if form == "bare":
            (root / f"n{i}").mkdir()
            if receiver == "pg_receivewal":
                cmd = [str(PG_BIN / "pg_receivewal"), "--synchronous", f"--slot={quorum.node_name(i)}"]
                cmd += ["--no-loop", "-D", str(root / f"n{i}"), "-d", dsn]
            else:
                cmd = [str(walrecv.binary()), f"--slot={quorum.node_name(i)}", f"--linger-us={linger_us}"]
                cmd += ["--directory", str(root / f"n{i}"), "--dbname", dsn]
        else:
            cmd = [
                sys.executable,
                "-m",
                "aurora_storage.node.main",
                "--ordinal",
                str(i),
                "--data-dir",
                str(root / f"n{i}"),
                "--listen",
                "127.0.0.1",
                "--port",
                str(ports[i]),
                "--peers",
                peers,
                "--writer",
                f"host={w.host} port={w.port} user=postgres",
                "--receiver",
                receiver,
                "--linger-us",
                str(linger_us),
            ]
        env = {**os.environ, **walrecv.env(), contract.Env.SECRETS_DIR: str(root / "secrets")}
        s.procs.append(subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env))
    if form == "node":
        import httpx

        auth = api_control.headers(token)
        for i, p in enumerate(ports):
            for _ in range(100):
                try:
                    url = f"http://127.0.0.1:{p}/v1/term"
                    httpx.put(url, json={"term": 1}, timeout=2, headers=auth).raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise RuntimeError(f"storage node {i} did not come up")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with w.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'"
            ).fetchone()
        if row and int(str(row[0])) == 6:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError("storage nodes did not all become quorum standbys")
    return s


@dataclass
class Result:
    config: str
    clients: int
    tps: float
    p50_ms: float
    p99_ms: float
    writer_cpu_us: float
    replica_cpu_us: float


def run_one(s: Setup, clients: int, duration: int, workdir: Path) -> Result:
    logdir = Path(tempfile.mkdtemp(dir=workdir))
    with s.writer.connect() as conn:
        conn.execute("VACUUM pgbench_branches, pgbench_tellers")
    wpids = _tree(s.writer.pid)
    rpids = s.replica_pids()
    w0, r0 = _cpu_seconds(wpids), _cpu_seconds(rpids)
    r = subprocess.run(
        [
            str(PG_BIN / "pgbench"),
            "-n",
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(duration),
            "--log",
            f"--log-prefix={logdir}/pgbench",
            "-h",
            s.writer.host,
            "-p",
            str(s.writer.port),
            "-U",
            "postgres",
            "postgres",
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise RuntimeError(f"pgbench failed on {s.name}: {r.stderr[-1000:]}")
    # Backends started during the run are children of the postmaster; count them too.
    wpids = sorted(set(wpids) | set(_tree(s.writer.pid)))
    w1, r1 = _cpu_seconds(wpids), _cpu_seconds(s.replica_pids())
    lat = []
    for f in logdir.iterdir():
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 6:
                lat.append(int(parts[2]) / 1000.0)
    shutil.rmtree(logdir, ignore_errors=True)
    n = len(lat)
    lat.sort()
    return Result(
        s.name,
        clients,
        n / duration,
        lat[n // 2],
        lat[min(n - 1, int(n * 0.99))],
        (w1 - w0) / n * 1e6,
        (r1 - r0) / n * 1e6,
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=30, help="seconds per pgbench run")
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    p.add_argument("--clients", default="1,8")
    p.add_argument("--scale", type=int, default=10)
    p.add_argument("--configs", default="none,standby,quorum", help="none,standby," + ",".join(QUORUM_KINDS))
    p.add_argument("--linger-us", type=int, default=0, help="quorumdb-walrecv --linger-us (group flush)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the cleanup in ``finally``
    workdir = Path(tempfile.mkdtemp(prefix="quorumdb-bench-"))
    troot = _make_root()
    template = troot / "data"
    subprocess.run(
        _as_pg(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(template),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-instructions",
            ]
        ),
        check=True,
        capture_output=True,
    )
    with (template / "pg_hba.conf").open("a") as fh:
        fh.write("host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n")
    with (template / "postgresql.conf").open("a") as fh:
        fh.write("\n".join(f"{k} = {v}" for k, v in BASE_SETTINGS.items()) + "\n")
    makers: dict[str, Callable[[Path], Setup]] = {"none": setup_none, "standby": setup_standby}
    for kind in QUORUM_KINDS:
        makers[kind] = functools.partial(setup_quorum, name=kind, linger_us=a.linger_us)
    configs = a.configs.split(",")
    setups: dict[str, Setup] = {}
    results: list[Result] = []
    try:
        for name in configs:
            log.info("setting up %s", name)
            setups[name] = makers[name](template)
            _pgbench_init(setups[name].writer, a.scale)
        clients = [int(c) for c in a.clients.split(",")]
        for rep in range(a.reps):
            order = configs[rep % len(configs) :] + configs[: rep % len(configs)]
            for c in clients:
                for name in order:
                    res = run_one(setups[name], c, a.duration, workdir)
                    log.info("rep %d %s", rep, res)
                    results.append(res)
    finally:
        for s in setups.values():
            sb = getattr(s, "_standby", None)
            if sb is not None:
                sb.stop("immediate")
            s.stop()
        shutil.rmtree(troot, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    report(results, configs)


def report(results: list[Result], configs: list[str]) -> None:
    def med(xs: list[float]) -> float:
        return statistics.median(xs) if xs else float("nan")

    print(
        f"\n{'config':<11}{'clients':>8}{'TPS':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'writer CPU us/txn':>19}{'replica CPU us/txn':>20}   runs (TPS)"
    )
    by: dict[tuple[str, int], list[Result]] = {}
    for r in results:
        by.setdefault((r.config, r.clients), []).append(r)
    for (cfg, c), rs in sorted(by.items(), key=lambda kv: (kv[0][1], configs.index(kv[0][0]))):
        print(
            f"{cfg:<11}{c:>8}{med([r.tps for r in rs]):>9.0f}{med([r.p50_ms for r in rs]):>9.2f}"
            f"{med([r.p99_ms for r in rs]):>9.2f}{med([r.writer_cpu_us for r in rs]):>19.0f}"
            f"{med([r.replica_cpu_us for r in rs]):>20.0f}   {[round(r.tps) for r in rs]}"
        )
    for c in sorted({r.clients for r in results}):
        tps = {cfg: med([r.tps for r in by.get((cfg, c), [])]) for cfg in configs}
        line = [f"clients={c}:"]
        if "quorum" in tps and "standby" in tps:
            line.append(f"quorum/standby {tps['quorum'] / tps['standby']:.2f}x")
        if "quorum" in tps and "none" in tps:
            line.append(f"quorum/none {tps['quorum'] / tps['none']:.2f}x")
        for other in ("quorum-pgrw", "walrecv", "receivewal"):
            if "quorum" in tps and other in tps:
                line.append(f"quorum/{other} {tps['quorum'] / tps[other]:.2f}x")
        print("  ".join(line))
    per_node = [
        f"{cfg}/c{c} {med([r.replica_cpu_us for r in rs]) / 6:.0f} us"
        for (cfg, c), rs in sorted(by.items())
        if cfg in QUORUM_KINDS
    ]
    if per_node:
        print("replica CPU per storage node per transaction (six nodes): " + ", ".join(per_node))


if __name__ == "__main__":
    main()
