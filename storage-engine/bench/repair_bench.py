"""Benchmark: a storage node rebuilding its WAL from five peers, against a durable copy of the same files.

Why it exists: a lost storage node is repaired from its peers while the cluster runs on the other five,
and the time it spends outside the quorum is the window in which one more loss costs writes. The Aurora
paper repairs a 10 GB segment in about 10 s; our target is at least half a sequential disk copy. Five
real node processes hold the same N sealed 16 MiB segments (hard links to one set of files: no writer,
no S3, only the repair pipeline: peers verify and send, the node receives, verifies, installs durably).
A sixth node starts holding only a later ``.partial``, so its window asks for all N. Each repetition
measures, interleaved so background noise hits both:

* two baselines: the same N files copied one after another into a fresh directory on the same disk, each
  written and ``fdatasync``ed (a durable copy file by file, as the repair installs them), and the same copy
  with one ``sync`` at the end (the page cache absorbs it first: the baseline most favourable to the copy);
* the repair: the node's own report, bytes fetched over the time from its repair start to its finish;

and the CPU seconds the repairing node and the five peers used. It prints MB/s, the ratio, the medians and
ranges. It is a script, not a test: it asserts nothing.

    .venv/bin/python storage-engine/bench/repair_bench.py --segments 64 --reps 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from aurora_api import contract  # noqa: E402
from aurora_storage import lsn as lsnmod  # noqa: E402

from tests.fixtures import availability, control  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
VICTIM = 2
NODES = 6


def _cpu_seconds(pids: Iterable[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime stime
    return total / CLK


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def durable_copy(files: list[Path], dest: Path, *, each: bool = True) -> float:
    """Seconds to copy ``files`` into ``dest`` one after another and make them durable: each file
    ``fdatasync``ed as it is written (``each``), or one ``sync`` of everything at the end (the page cache
    absorbs the writes first: the most favourable baseline)."""
    dest.mkdir()
    t0 = time.monotonic()
    for f in files:
        with f.open("rb") as fin, (dest / f.name).open("wb") as fout:
            shutil.copyfileobj(fin, fout, 1024 * 1024)
            fout.flush()
            if each:
                os.fdatasync(fout.fileno())
    if not each:
        os.sync()
    fd = os.open(dest, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    elapsed = time.monotonic() - t0
    shutil.rmtree(dest)
    os.sync()  # the deletion's writeback is not left to the next measurement
    return elapsed


@dataclass
class Rep:
    copy_mb_s: float
    synced_copy_mb_s: float
    repair_mb_s: float
    repair_s: float
    victim_cpu_s: float
    peers_cpu_s: float

    @property
    def ratio(self) -> float:
        return self.repair_mb_s / self.copy_mb_s

    @property
    def ratio_synced(self) -> float:
        return self.repair_mb_s / self.synced_copy_mb_s


class Bed:
    """Five peers holding ``n`` sealed segments, and the victim's ports; nodes are real processes."""

    def __init__(self, root: Path, n: int) -> None:
        self.root, self.n = root, n
        self.ports = availability.free_ports(NODES)
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.http = httpx.Client(timeout=10)
        self.src = root / "src"
        self.src.mkdir()
        block = os.urandom(lsnmod.WAL_SEGMENT_SIZE)
        for segno in range(1, n + 1):
            # Distinct content per file (the first 8 bytes), the rest shared: generating GiBs of randomness
            # would cost more than the benchmark; the pipeline hashes and copies every byte regardless.
            (self.src / lsnmod.segment_name(1, segno)).write_bytes(segno.to_bytes(8, "big") + block[8:])
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("QUORUMDB_S3")}
        control.write_token(root / "secrets")  # the nodes read the cluster's control token at start-up
        self.env[contract.Env.SECRETS_DIR] = str(root / "secrets")

    def start(self, i: int) -> None:
        args = [sys.executable, "-m", "aurora_storage.node.main", "--ordinal", str(i)]
        args += ["--data-dir", str(self.root / f"node{i}"), "--listen", "127.0.0.1"]
        args += ["--port", str(self.ports[i])]
        args += ["--peers", ",".join(self.urls)]
        log = (self.root / f"node{i}.log").open("ab")
        self.procs[i] = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def sealed(self, i: int) -> int:
        p = self.procs[i]
        if p.poll() is not None:
            log = (self.root / f"node{i}.log").read_text()[-800:]
            raise RuntimeError(f"storage node {i} exited {p.returncode}:\n{log}")
        files = self.http.get(self.urls[i] + "/v1/segments").json()["files"]
        return sum(1 for f in files if f["sha256"])

    def start_peers(self) -> None:
        for i in range(NODES):
            if i == VICTIM:
                continue
            wal = self.root / f"node{i}" / "wal"
            wal.mkdir(parents=True)
            for f in self.src.iterdir():
                os.link(f, wal / f.name)  # same bytes on every peer, one copy on disk
            self.start(i)
        peers = [i for i in range(NODES) if i != VICTIM]
        _wait(lambda: all(self.sealed(i) == self.n for i in peers), 600, "peers sealed")
        _wait(lambda: self._idle([self.procs[i].pid for i in peers]), 600, "peers idle (start-up scrub done)")

    @staticmethod
    def _idle(pids: list[int]) -> bool:
        before = _cpu_seconds(pids)
        time.sleep(1.0)
        return _cpu_seconds(pids) - before < 0.05

    def repair(self) -> tuple[float, float, float, float]:
        """(MB/s, seconds, victim CPU s, peers CPU s) of one repair of an empty node."""
        data = self.root / f"node{VICTIM}"
        shutil.rmtree(data, ignore_errors=True)
        wal = data / "wal"
        wal.mkdir(parents=True)
        partial = lsnmod.segment_name(1, self.n + 1) + ".partial"
        (wal / partial).write_bytes(bytes(lsnmod.WAL_SEGMENT_SIZE))
        peers = [p.pid for i, p in self.procs.items() if i != VICTIM]
        peers_before = _cpu_seconds(peers)
        self.start(VICTIM)
        url = self.urls[VICTIM]
        _wait(lambda: self.http.get(url + "/v1/status").json()["healthy"], 600, "repair")
        rep = self.http.get(url + "/v1/status").json()["repair"]
        victim_cpu = _cpu_seconds([self.procs[VICTIM].pid])
        peers_cpu = _cpu_seconds(peers) - peers_before
        self.stop(VICTIM)
        if rep["fetched_files"] != self.n:
            raise RuntimeError(f"repair fetched {rep['fetched_files']} of {self.n} files: {rep}")
        seconds = rep["finished_at"] - rep["started_at"]
        return rep["fetched_bytes"] / seconds / 1e6, seconds, victim_cpu, peers_cpu

    def stop(self, i: int) -> None:
        p = self.procs.pop(i)
        p.kill()
        p.wait()

    def close(self) -> None:
        for i in list(self.procs):
            self.stop(i)
        self.http.close()


def _summary(label: str, values: list[float], unit: str, digits: int = 0) -> str:
    fmt = f"{{:.{digits}f}}"
    med = fmt.format(statistics.median(values))
    return f"{label}: median {med}{unit} (range {fmt.format(min(values))}-{fmt.format(max(values))})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--segments", type=int, default=64, help="16 MiB segments repaired per repetition")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=None, help="where the nodes keep their data (a tmp dir)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="repair-bench-", dir=args.dir))
    bed = Bed(root, args.segments)
    mb = args.segments * lsnmod.WAL_SEGMENT_SIZE / 1e6
    reps: list[Rep] = []
    try:
        bed.start_peers()
        files = sorted(bed.src.iterdir())
        print(f"{args.segments} segments ({mb:.0f} MB) from 5 peers; {args.reps} interleaved repetitions; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        for r in range(args.reps):
            copy_s = durable_copy(files, root / "copy")
            synced_s = durable_copy(files, root / "copy", each=False)
            mb_s, seconds, victim_cpu, peers_cpu = bed.repair()
            rep = Rep(mb / copy_s, mb / synced_s, mb_s, seconds, victim_cpu, peers_cpu)
            reps.append(rep)
            print(
                f"rep {r + 1}: copy {rep.copy_mb_s:.0f} MB/s (fdatasync each), {rep.synced_copy_mb_s:.0f} "
                f"MB/s (one sync); repair {rep.repair_mb_s:.0f} MB/s ({seconds:.2f} s); ratios "
                f"{rep.ratio:.2f} / {rep.ratio_synced:.2f}; CPU: repairing node {victim_cpu:.2f} s (with its "
                f"start-up), peers {peers_cpu:.2f} s; load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    finally:
        bed.close()
        shutil.rmtree(root, ignore_errors=True)
    print(_summary("copy, fdatasync each file", [r.copy_mb_s for r in reps], " MB/s"))
    print(_summary("copy, one sync at the end", [r.synced_copy_mb_s for r in reps], " MB/s"))
    print(_summary("repair", [r.repair_mb_s for r in reps], " MB/s"))
    print(_summary("ratio repair / copy (fdatasync each)", [r.ratio for r in reps], "x", 2))
    print(_summary("ratio repair / copy (one sync)", [r.ratio_synced for r in reps], "x", 2))
    per_gb = [(r.victim_cpu_s + r.peers_cpu_s) / (mb / 1000) for r in reps]
    print(_summary("CPU per GB repaired (node + peers)", per_gb, " s", 2))


if __name__ == "__main__":
    main()
