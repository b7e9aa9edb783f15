"""Pause and resume with real processes: a paused instance stops PostgreSQL and stays stopped; a client
through the resume proxy wakes it and is answered; no acknowledged commit is lost across cycles.

The test plays the operator (it asks the managers to pause with the wakes it saw); the proxy is the real
``aurora_proxy`` process. Repeated ``QUORUMDB_PAUSE_RUNS`` times (default 3); the resume times (client's
connect to its first answer) are printed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from aurora_api import contract

from tests.fixtures import availability
from tests.instance_integration import workload
from tests.instance_integration.harness import PYTHON, SUPERUSER, Bed, Instance

pytestmark = pytest.mark.integration
RUNS = int(os.environ.get("QUORUMDB_PAUSE_RUNS", "3"))


@contextlib.contextmanager
def proxy(bed: Bed) -> Iterator[tuple[int, int]]:
    """The resume proxy over the bed's instances; yields its (writer, reader) ports."""
    writer_port, reader_port, http_port = availability.free_ports(3)
    E = contract.EnvProxy
    env = {
        **bed.base_env,
        E.INSTANCES: ",".join(f"127.0.0.1:{i.pg_port}:{i.http_port}" for i in bed.instances),
        E.LISTEN: "127.0.0.1",
        E.WRITER_PORT: str(writer_port),
        E.READER_PORT: str(reader_port),
        E.HTTP_PORT: str(http_port),
    }
    log = (bed.root / "proxy.log").open("ab")
    cmd = [PYTHON, "-m", "aurora_proxy.main"]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.HTTPError):
                st = httpx.get(f"http://127.0.0.1:{http_port}/v1/status", timeout=1).json()
                if st["writer"]:
                    break
            assert time.monotonic() < deadline, (bed.root / "proxy.log").read_text()[-2000:]
            time.sleep(0.1)
        yield writer_port, reader_port
    finally:
        proc.terminate()
        proc.wait(10)


def pause(inst: Instance, wakes: int | None = None) -> httpx.Response:
    seen = inst.status()["wakes"] if wakes is None else wakes
    return inst.http.post(contract.InstancePaths.PAUSE, json={contract.PauseFields.WAKES: seen})


def stopped(inst: Instance) -> bool:
    st = inst.status()
    return bool(st["paused"]) and not st["postmaster_running"]


def via(port: int) -> str:
    return (
        f"host=127.0.0.1 port={port} user={SUPERUSER[0]} password={SUPERUSER[1]} dbname=appdb "
        "connect_timeout=40"
    )


def test_pause_resume_through_the_proxy_loses_nothing(pair: Bed, capsys: pytest.CaptureFixture[str]) -> None:
    writer, reader = pair.writer, pair.readers()[0]
    assert writer is not None
    workload.init_schema(writer)
    acked: set[int] = set()
    resumes: list[float] = []
    with proxy(pair) as (writer_port, reader_port):
        for run in range(RUNS):
            audit = workload.AuditClient(writer).start()
            time.sleep(1.5)
            audit.stop()
            assert audit.acked and not audit.errors
            acked |= audit.acked
            for inst in (writer, reader):
                assert pause(inst).status_code == 202
            for inst in (writer, reader):
                inst.wait(lambda i=inst: stopped(i), 30, "PostgreSQL stopped by the pause")
            assert not writer.ready()
            started = time.monotonic()
            with psycopg.connect(via(writer_port), autocommit=True) as conn:
                row = conn.execute("SELECT count(*) FROM audit").fetchone()
                resumes.append(time.monotonic() - started)
                assert row is not None and row[0] >= len(acked)
                conn.execute("INSERT INTO audit (id) VALUES (%s)", (nid := workload.next_id(),))
                acked.add(nid)  # committed through the proxy: the storage quorum followed the resumed writer
            assert stopped(reader), "a client of the writer woke only the writer"
            with psycopg.connect(via(reader_port), autocommit=True) as conn:
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            print(f"run {run + 1}: resumed in {resumes[-1]:.3f}s")
    lost = workload.missing(writer, acked)
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged commits lost across pause/resume"
    with capsys.disabled():
        line = workload.summary("resume through the proxy (connect to first answer)", resumes)
        print(f"\n{line}; {len(acked)} acknowledged commits audited, 0 lost")
        workload.write_result(line)


def test_a_pause_gives_way_to_clients(solo: Bed) -> None:
    """Refused when a client woke the instance since it was judged idle; held while a client is connected."""
    w = solo.writer
    assert w is not None
    seen = w.status()["wakes"]
    assert w.http.post(contract.InstancePaths.RESUME).status_code == 200  # a client through the proxy
    assert pause(w, seen).status_code == 409
    with w.connect() as conn:
        assert pause(w).status_code == 202
        time.sleep(2.5)
        assert w.status()["postmaster_running"], "stopped under a connected client"
        assert conn.execute("SELECT 1").fetchone() == (1,)
    w.wait(lambda: stopped(w), 15, "PostgreSQL stopped once the client left")
    w.kill()  # a manager restarted while paused keeps PostgreSQL stopped
    w.start(contract.ROLE_WRITER, solo.term)
    w.wait(lambda: stopped(w), 30, "the restarted manager to stay paused")
    time.sleep(2)
    assert stopped(w)
    assert w.http.post(contract.InstancePaths.RESUME, timeout=40).status_code == 200
    assert w.ready()
