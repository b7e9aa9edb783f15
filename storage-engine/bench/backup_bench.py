"""Benchmark: base backup and restore throughput of QuorumDB against pg_basebackup and pgBackRest.

Why it exists: the issue's target is that our base backup (``pg_basebackup`` streamed into S3 by
``aurora_instance.basebackup.take``) and our restore (``aurora_instance.restore.unpack``: the tar streamed
back from S3, hashed and extracted) run at no less than 0.8x the faster of two baselines, measured in one
run on one machine: (A) ``pg_basebackup -F t`` to local disk and ``tar -xf`` of that tar, the cost of the
bytes alone, and (B) pgBackRest ``backup --type=full`` / ``restore`` against an S3 repository on the same
MinIO server, what users run today. Methods are interleaved over repetitions, their order rotated each
time, so that background noise hits all of them alike. Every timed step ends with ``sync`` so that
deferred writeback is counted for everyone. It prints per-repetition MB/s (10^6 bytes per second),
medians and the ratios. It is a script, not a test: it asserts nothing.

    make bench-backup
    .venv/bin/python storage-engine/bench/backup_bench.py --scale 20 --reps 3

It needs PostgreSQL 15, the MinIO binary of the test bed (``make bins``, or ``QUORUMDB_MINIO_BIN``),
``openssl`` (MinIO serves TLS because pgBackRest only speaks HTTPS to S3) and pgBackRest
(``apt-get install -y pgbackrest``). PostgreSQL and pgBackRest run as user ``postgres`` when run as root.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from aurora_api import backups, contract  # noqa: E402
from aurora_instance import basebackup  # noqa: E402
from aurora_instance.restore import unpack  # noqa: E402
from aurora_instance.restore_source import Source  # noqa: E402
from aurora_instance.settings import Settings  # noqa: E402
from aurora_storage import s3  # noqa: E402

from tests.fixtures import availability  # noqa: E402
from tests.fixtures.postgres import BASE_SETTINGS, PG_BIN, PgCluster, _as_pg, _chown_pg  # noqa: E402
from tests.fixtures.s3server import ACCESS_KEY, SECRET_KEY, _minio_binary  # noqa: E402

log = logging.getLogger("backup_bench")
MB = 1e6
OURS, LOCAL, PGBR = "quorumdb", "pg_basebackup+tar", "pgbackrest"
METHODS = [OURS, LOCAL, PGBR]
BUCKET = "bench"
PREFIX = "quorumdb"
STANZA = "bench"
TARGET = 0.8
# pgBackRest's fast settings: lz4 (its fastest compression), one worker per core, an immediate checkpoint,
# no WAL archive check (this server does not archive WAL; neither does ours: -X none), 16 MiB S3 parts as
# ours, no expire step inside the timed backup.
PGBR_FAST = [
    "--compress-type=lz4",
    "--process-max=2",
    "--start-fast",
    "--archive-check=n",
    "--repo1-storage-upload-chunk-size=16MiB",
    "--expire-auto=n",
]


@dataclass
class Sample:
    op: str  # "backup" or "restore"
    method: str
    rep: int
    nbytes: int
    seconds: float
    note: str = ""

    @property
    def mbps(self) -> float:
        return self.nbytes / MB / self.seconds


def _dir_bytes(path: Path) -> int:
    """Apparent size of the regular files under ``path``."""
    total = 0
    for dirpath, _, names in os.walk(path):
        for n in names:
            p = Path(dirpath) / n
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
    return total


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{what} exited {r.returncode}: {(r.stderr or r.stdout).strip()[-1500:]}")
    return r


@dataclass
class Bench:
    work: Path
    scale: int
    pg: PgCluster | None = None
    minio: subprocess.Popen[bytes] | None = None
    archive: s3.Archive | None = None
    settings: Settings | None = None
    system_identifier: str = ""
    db_bytes: int = 0
    encrypt: bool = False
    pgbr_conf: Path | None = None
    pgbr_failed: str = ""
    minio_port: int = 0
    ours_ids: dict[int, str] = field(default_factory=dict)

    # --- set-up -----------------------------------------------------------------------------------------

    def start_minio(self) -> None:
        binary = _minio_binary()
        if binary is None:
            raise SystemExit("no MinIO binary: run `make bins` or set QUORUMDB_MINIO_BIN")
        certs = self.work / "certs"
        certs.mkdir()
        _run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(certs / "private.key"), "-out", str(certs / "public.crt"),
            ],
            "openssl req",
        )  # fmt: skip
        port, console = availability.free_ports(2)
        env = {**os.environ, "MINIO_ROOT_USER": ACCESS_KEY, "MINIO_ROOT_PASSWORD": SECRET_KEY}
        self.minio = subprocess.Popen(
            [
                binary, "server", str(self.work / "minio"), "--address", f"127.0.0.1:{port}",
                "--console-address", f"127.0.0.1:{console}", "--certs-dir", str(certs), "--quiet",
            ],
            env=env, stdout=(self.work / "minio.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        os.environ["AWS_CA_BUNDLE"] = str(certs / "public.crt")  # boto3 verifies MinIO's self-signed cert
        key = os.urandom(32) if self.encrypt else None
        self.archive = s3.Archive(f"https://127.0.0.1:{port}", BUCKET, ACCESS_KEY, SECRET_KEY, key=key)
        deadline = time.monotonic() + 60
        while True:
            if self.minio.poll() is not None:
                raise RuntimeError(f"minio exited: {(self.work / 'minio.log').read_text()[-1500:]}")
            try:
                self.archive.ensure_bucket()
                break
            except Exception as err:  # not up yet
                if time.monotonic() > deadline:
                    raise RuntimeError(f"minio not ready: {err}") from err
                time.sleep(0.3)
        self.minio_port = port

    def start_postgres(self) -> None:
        # ``Settings.socket_dir`` is data_root/run: the cluster's root (its socket directory) is exactly that.
        data_root = self.work / "instance"
        data_root.mkdir(mode=0o755)
        root = data_root / "run"
        root.mkdir(mode=0o755)
        _chown_pg(root)
        self.pg = PgCluster(root, availability.free_port())
        _run(
            _as_pg([str(PG_BIN / "initdb"), "-D", str(self.pg.datadir), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--no-instructions"]),
            "initdb",
        )  # fmt: skip
        with (self.pg.datadir / "pg_hba.conf").open("a") as fh:
            fh.write("host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n")
        with (self.pg.datadir / "postgresql.conf").open("a") as fh:
            fh.write("\n".join(f"{k} = {v}" for k, v in BASE_SETTINGS.items()) + "\n")
        self.pg.start()
        log.info("pgbench -i -s %d", self.scale)
        _run(
            [str(PG_BIN / "pgbench"), "-i", "-q", "-s", str(self.scale), "-h", self.pg.host,
             "-p", str(self.pg.port), "-U", "postgres", "postgres"],
            "pgbench -i",
        )  # fmt: skip
        with self.pg.connect() as conn:
            conn.execute("CHECKPOINT")
            row = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
            size = conn.execute("SELECT sum(pg_database_size(oid)) FROM pg_database").fetchone()
        assert row is not None and size is not None
        self.system_identifier = str(row[0])
        self.db_bytes = int(str(size[0]))
        log.info("databases: %.0f MB", self.db_bytes / MB)
        self.settings = Settings(
            cluster_name="bench", instance_name="bench", data_root=data_root,
            secrets_dir=self.work / "secrets", config_dir=None, podinfo_dir=None,
            initial_role=contract.ROLE_WRITER, initial_term=1, writer_endpoint=None,
            listen_address="127.0.0.1", advertise_host="127.0.0.1", postgres_port=self.pg.port,
            http_port=0, reader_max_lag_seconds=10.0, pg_bin=PG_BIN, python=sys.executable,
        )  # fmt: skip

    def setup_pgbackrest(self) -> None:
        assert self.pg is not None
        home = self.work / "pgbackrest"
        for d in (home, home / "lock", home / "log"):
            d.mkdir(mode=0o755)
            _chown_pg(d)
        conf = home / "pgbackrest.conf"
        conf.write_text(
            "\n".join(
                [
                    "[global]",
                    "repo1-type=s3",
                    "repo1-path=/pgbackrest",
                    f"repo1-s3-bucket={BUCKET}",
                    "repo1-s3-endpoint=127.0.0.1",
                    f"repo1-storage-port={self.minio_port}",
                    "repo1-s3-region=us-east-1",
                    f"repo1-s3-key={ACCESS_KEY}",
                    f"repo1-s3-key-secret={SECRET_KEY}",
                    "repo1-s3-uri-style=path",
                    "repo1-storage-verify-tls=n",
                    "repo1-retention-full=9999",
                    f"lock-path={home / 'lock'}",
                    f"log-path={home / 'log'}",
                    "log-level-console=warn",
                    "log-level-file=off",
                    "",
                    f"[{STANZA}]",
                    f"pg1-path={self.pg.datadir}",
                    f"pg1-port={self.pg.port}",
                    f"pg1-socket-path={self.pg.root}",
                    "pg1-user=postgres",
                    "",
                ]
            )
        )
        conf.chmod(0o644)
        self.pgbr_conf = conf
        try:
            self._pgbr("stanza-create")
        except RuntimeError as err:
            self.pgbr_failed = f"stanza-create: {err}"
            log.warning("pgBackRest: %s", self.pgbr_failed)

    def _pgbr(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.pgbr_conf is not None
        cmd = ["pgbackrest", f"--config={self.pgbr_conf}", f"--stanza={STANZA}", *args]
        return _run(_as_pg(cmd), "pgbackrest " + args[0])

    # --- the timed steps ----------------------------------------------------------------------------------

    def _timed(
        self, op: str, method: str, rep: int, step: Callable[[], None], measure: Callable[[], tuple[int, str]]
    ) -> Sample:
        """Time ``step`` and a ``sync``; ``measure`` (bytes, note) runs after the clock stopped."""
        t0 = time.perf_counter()
        step()
        os.sync()
        seconds = time.perf_counter() - t0
        nbytes, note = measure()
        s = Sample(op, method, rep, nbytes, seconds, note)
        log.info("rep %d %-7s %-18s %8.1f MB %7.2f s %7.1f MB/s %s",
                 rep, op, method, nbytes / MB, s.seconds, s.mbps, note)  # fmt: skip
        return s

    def backup(self, method: str, rep: int) -> Sample | None:
        assert self.pg is not None and self.settings is not None and self.archive is not None
        if method == OURS:
            archive, settings = self.archive, self.settings

            job = basebackup.Job(f"bench-{rep}", "bench")

            def ours() -> None:
                rec = basebackup.take(settings, "postgres", archive, PREFIX, job, self.system_identifier)
                self.ours_ids[rep] = rec.id

            # The database bytes backed up (as pgBackRest's own count); the store holds them zstd-compressed.
            return self._timed(
                "backup", method, rep, ours,
                lambda: (self.db_bytes, f"(zstd in store: {job.bytes_done / MB:.1f} MB)"),
            )  # fmt: skip
        if method == LOCAL:
            target = self.work / f"local-{rep}"

            def local() -> None:
                assert self.pg is not None
                _run(
                    [str(PG_BIN / "pg_basebackup"), "-h", str(self.pg.root), "-p", str(self.pg.port),
                     "-U", "postgres", "-D", str(target), "-F", "t", "-X", "none", "-c", "fast",
                     "--no-password"],
                    "pg_basebackup",
                )  # fmt: skip

            return self._timed("backup", method, rep, local, lambda: (_dir_bytes(target), ""))
        if self.pgbr_failed:
            return None

        def pgbr() -> None:
            self._pgbr("backup", "--type=full", *PGBR_FAST)

        def pgbr_size() -> tuple[int, str]:
            info = json.loads(self._pgbr("info", "--output=json").stdout)
            last = info[0]["backup"][-1]["info"]
            # The database bytes it backed up (as our tar's bytes); the repository holds them lz4-compressed.
            return int(last["size"]), f"(lz4 in repo: {int(last['repository']['size']) / MB:.1f} MB)"

        try:
            return self._timed("backup", method, rep, pgbr, pgbr_size)
        except RuntimeError as err:
            self.pgbr_failed = f"backup: {err}"
            log.warning("pgBackRest failed: %s", self.pgbr_failed)
            return None

    def restore(self, method: str, rep: int) -> Sample | None:
        assert self.archive is not None
        target = self.work / f"restore-{method}-{rep}"

        def size() -> tuple[int, str]:
            return _dir_bytes(target), ""

        try:
            if method == OURS:
                archive = self.archive

                def ours() -> None:
                    backup_id = self.ours_ids[rep]
                    record = backups.BaseBackup.model_validate(
                        archive.get_json(backups.record_key(PREFIX, backup_id))
                    )
                    unpack(Source(archive, PREFIX, backup_id, None, 0), record, target)

                return self._timed("restore", method, rep, ours, size)
            if method == LOCAL:
                target.mkdir(mode=0o700)

                def local() -> None:
                    _run(
                        ["tar", "-xf", str(self.work / f"local-{rep}" / "base.tar"), "-C", str(target)], "tar"
                    )

                return self._timed("restore", method, rep, local, size)
            if self.pgbr_failed:
                return None
            target.mkdir(mode=0o700)
            _chown_pg(target)

            def pgbr() -> None:
                self._pgbr("restore", f"--pg1-path={target}", "--process-max=2")

            try:
                return self._timed("restore", method, rep, pgbr, size)
            except RuntimeError as err:
                self.pgbr_failed = f"restore: {err}"
                log.warning("pgBackRest failed: %s", self.pgbr_failed)
                return None
        finally:
            shutil.rmtree(target, ignore_errors=True)

    # --- tear-down ----------------------------------------------------------------------------------------

    def close(self) -> None:
        if self.pg is not None:
            self.pg.stop("immediate")
        if self.minio is not None:
            self.minio.terminate()
            try:
                self.minio.wait(10)
            except subprocess.TimeoutExpired:
                self.minio.kill()
                self.minio.wait()
        shutil.rmtree(self.work, ignore_errors=True)


def report(samples: list[Sample], pgbr_failed: str) -> None:
    def med(op: str, method: str) -> float | None:
        xs = [s.mbps for s in samples if s.op == op and s.method == method]
        return statistics.median(xs) if xs else None

    print(f"\n{'op':<8}{'method':<19}{'rep':>4}{'MB':>9}{'seconds':>9}{'MB/s':>9}")
    for s in sorted(samples, key=lambda s: (s.op, METHODS.index(s.method), s.rep)):
        print(
            f"{s.op:<8}{s.method:<19}{s.rep:>4}{s.nbytes / MB:>9.1f}{s.seconds:>9.2f}{s.mbps:>9.1f}  {s.note}"
        )
    print(f"\nmedians (MB/s; MB = 10^6 bytes; {len({s.rep for s in samples})} repetitions):")
    for op in ("backup", "restore"):
        cells = []
        for m in METHODS:
            v = med(op, m)
            cells.append(f"{m} {v:.1f}" if v is not None else f"{m} failed: {pgbr_failed or 'no samples'}")
        print(f"  {op:<8} " + "   ".join(cells))
    print(f"\nratios (ours = {OURS}; A = {LOCAL} on local disk; B = {PGBR} to S3 on the same MinIO):")
    for op in ("backup", "restore"):
        ours, a, b = med(op, OURS), med(op, LOCAL), med(op, PGBR)
        line = [f"  {op:<8}"]
        if ours is None:
            print(f"  {op:<8} ours failed")
            continue
        line.append(f"ours/A {ours / a:.2f}x" if a else "ours/A n/a")
        line.append(f"ours/B {ours / b:.2f}x" if b else f"ours/B n/a (pgBackRest failed: {pgbr_failed})")
        faster = max(v for v in (a, b) if v is not None) if (a or b) else None
        if faster:
            which = "A" if faster == a else "B"
            ratio = ours / faster
            verdict = "met" if ratio >= TARGET else "NOT met"
            line.append(f"ours/faster({which}) {ratio:.2f}x -> target >= {TARGET}x {verdict}")
        print("   ".join(line))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=int, default=20, help="pgbench -i scale (20: about 300 MB)")
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    p.add_argument("--encrypt", action="store_true", help="ours with client-side encryption (a random key)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for tool, pkg in (("pgbackrest", "pgbackrest"), ("openssl", "openssl")):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed: apt-get install -y {pkg}", file=sys.stderr)
            sys.exit(2)
    version = subprocess.run(["pgbackrest", "version"], capture_output=True, text=True).stdout.strip()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the cleanup in ``finally``
    work = Path(tempfile.mkdtemp(prefix="quorumdb-backup-bench-"))
    work.chmod(0o755)  # postgres must reach its directories below
    bench = Bench(work, a.scale, encrypt=a.encrypt)
    samples: list[Sample] = []
    try:
        bench.start_minio()
        bench.start_postgres()
        bench.setup_pgbackrest()
        for rep in range(a.reps):
            order = METHODS[rep % len(METHODS) :] + METHODS[: rep % len(METHODS)]
            for op in (bench.backup, bench.restore):
                for method in order:
                    s = op(method, rep)
                    if s is not None:
                        samples.append(s)
            shutil.rmtree(work / f"local-{rep}", ignore_errors=True)
    finally:
        bench.close()
    print(f"\n{version}: backup {' '.join(PGBR_FAST)} --type=full; restore --process-max=2; repo on S3 "
          "(MinIO, TLS, repo1-s3-uri-style=path, repo1-storage-verify-tls=n)")  # fmt: skip
    sealed = ", AES-256-GCM" if a.encrypt else ""
    opened = " | decrypt" if a.encrypt else ""
    print(f"ours: basebackup.take (pg_basebackup -F t -X none -c fast, 1 MiB pipe | zstd -1 | sha256{sealed}"
          " | "
          f"S3 multipart, 16 MiB parts) and restore.unpack (S3 GET{opened} | sha256 | zstd -d | tar "
          "extract); every timed step ends with sync")  # fmt: skip
    report(samples, bench.pgbr_failed)


if __name__ == "__main__":
    main()
