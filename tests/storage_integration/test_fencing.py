"""Term fencing: a deposed writer can never again gather four acknowledgements; wrong identities refused.

Prose: writer A runs at term 1 with six storage nodes. The control plane promotes writer B (same
cluster identity, term 2) and moves three nodes to term 2 pointing at B. A commit on A now waits forever
(only three nodes still acknowledge A), while B commits with its own quorum once a fourth node follows it.
Nodes refuse a lower term, a writer that declares a stale term, and a writer of another cluster.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import psycopg
import pytest
from aurora_storage import slots

from tests.fixtures.postgres import PgFactory
from tests.fixtures.storage import StorageFactory

pytestmark = pytest.mark.integration


def _commit_within(conninfo: str, seconds: float) -> bool:
    """True when one INSERT commit is acknowledged within ``seconds``."""
    done = threading.Event()

    def run() -> None:
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS fence_probe(x int)")
                conn.execute("INSERT INTO fence_probe VALUES (1)")
            done.set()
        except psycopg.Error:
            pass

    threading.Thread(target=run, daemon=True).start()
    return done.wait(seconds)


def test_deposed_writer_cannot_reach_write_quorum(
    storage_factory: StorageFactory, pg_factory: PgFactory
) -> None:
    sc = storage_factory()
    a = sc.writer
    assert _commit_within(a.conninfo(), 10), "writer A must commit with six nodes"
    b = pg_factory(settings=slots.writer_settings(term=2))  # same template: same system identifier
    with b.connect() as conn:
        slots.ensure_slots(conn)
    b_info = f"host=127.0.0.1 port={b.port} user=postgres"
    for i in (0, 1, 2):
        r = sc.set_term(i, 2, writer=b_info)
        assert r.status_code == 200, r.text
    # The term call returns only after the old receiver is dead: A has at most three acknowledgers now.
    assert not _commit_within(a.conninfo(), 4), "a deposed writer must not reach four acknowledgements"
    # A node on term 2 pointed back at A refuses it (A declares term 1).
    sc.set_term(0, 2, writer=sc.writer_conninfo())
    sc.wait(lambda: "stale writer" in sc.status(0)["decision"], 10, "node 0 to refuse the stale writer")
    assert not sc.status(0)["streaming"]
    # Terms never go backwards.
    r = sc.set_term(1, 1)
    assert r.status_code == 409 and "stale term" in r.text
    # B gathers its quorum once a fourth node follows it.
    for i in (0, 3):
        assert sc.set_term(i, 2, writer=b_info).status_code == 200
    assert _commit_within(b.conninfo(), 15), "new writer must commit with four nodes on its term"


def test_wrong_cluster_identity_is_refused(storage_factory: StorageFactory) -> None:
    sc = storage_factory()
    st = sc.status(5)
    assert st["system_identifier"], "nodes pin the cluster identity on first stream"
    r = sc.http.put(
        sc.urls[5] + "/v1/term", json={"term": 1, "writer": sc.writer_conninfo(), "system_identifier": "42"}
    )
    assert r.status_code == 409 and "wrong cluster identity" in r.text
    # A node whose pinned identity differs from the writer's refuses to stream.
    sc.kill(5)
    state_file = sc.data_dir(5) / "state.json"
    state = json.loads(state_file.read_text())
    state["system_identifier"] = "42"
    state_file.write_text(json.dumps(state))
    sc.start(5, set_term=False)
    sc.wait(lambda: "wrong cluster identity" in sc.status(5)["decision"], 15, "identity refusal")
    time.sleep(1)
    assert not sc.status(5)["streaming"]
    assert sc.streaming_count() == 5


def test_a_term_change_without_the_control_token_is_refused_and_changes_nothing(
    storage_factory: StorageFactory,
) -> None:
    sc = storage_factory()
    before = sc.status(0)["term"]
    body = {"term": before + 5, "writer": None}
    assert httpx.put(sc.urls[0] + "/v1/term", json=body, timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer " + "x" * 32}
    assert httpx.put(sc.urls[0] + "/v1/term", json=body, headers=wrong, timeout=5).status_code == 403
    assert sc.status(0)["term"] == before
    assert httpx.get(sc.urls[0] + "/v1/term", timeout=5).status_code == 200  # reads stay open


MALFORMED_TERMS: list[bytes] = [
    b"", b"{", b"null", b"[1]", b'"term"', bytes(range(256)), b'{"writer": "x"}', b'{"term": "7"}',
    b'{"term": 7.5}', b'{"term": true}', b'{"term": -1}', b'{"term": 7, "writer": {"host": "x"}}',
    b'{"term": 7, "system_identifier": 42}', b'{"term": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
]  # fmt: skip


def test_a_malformed_term_change_gets_400_and_changes_nothing(storage_factory: StorageFactory) -> None:
    sc = storage_factory()
    before = sc.http.get(sc.urls[0] + "/v1/term").json()
    for body in MALFORMED_TERMS:
        answer = sc.http.put(
            sc.urls[0] + "/v1/term", content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 400, (body[:40], answer.status_code, answer.text[:200])
    assert sc.http.get(sc.urls[0] + "/v1/term").json() == before
    assert sc.streaming_count() == 6
