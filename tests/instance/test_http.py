"""Promote/demote are idempotent per term and refuse older terms (HTTP handlers over a fake manager)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aurora_api import contract, control
from aurora_api.reports import InstanceReport, Role
from aurora_instance import http
from aurora_instance.basebackup import Backups
from aurora_instance.manager import Manager
from aurora_instance.settings import Settings
from aurora_instance.snapshot import Intent

Client = TestClient[web.Request, web.Application]

P = contract.InstancePaths


class FakeManager:
    def __init__(self, intent: Intent) -> None:
        self.intent = intent
        self.changes: list[Intent] = []
        self.is_ready = False
        self.last_decision = "writer healthy"

    def set_intent(self, intent: Intent) -> None:
        self.changes.append(intent)
        self.intent = intent

    def status(self) -> InstanceReport:
        role: Role = "writer" if self.intent.role == "writer" else "reader"
        return InstanceReport(
            term=self.intent.term, ready=self.is_ready, role=role, lag_bytes=0, lag_seconds=0.0, timeline=1
        )

    def ready(self) -> bool:
        return self.is_ready

    def healthy(self) -> bool:
        return True

    def switch_wal(self) -> str | None:
        return "0/5000000" if self.is_ready and self.intent.role == contract.ROLE_WRITER else None


TOKEN = "control-token-for-tests"


@pytest.fixture
async def reader() -> AsyncIterator[tuple[FakeManager, Client]]:
    fake = FakeManager(Intent(contract.ROLE_READER, 2, "w:5432"))
    backups = Backups(cast(Settings, None), "postgres", None)
    app = http.build(cast(Manager, fake), backups, control.fixed(TOKEN))
    async with TestClient(TestServer(app), headers=control.headers(TOKEN)) as client:
        yield fake, client


async def test_promote_is_idempotent_per_term(reader: tuple[FakeManager, Client]) -> None:
    fake, client = reader
    assert (await client.post(P.PROMOTE, json={"term": 3})).status == 202
    assert fake.changes == [Intent(contract.ROLE_WRITER, 3, None)]
    assert (await client.post(P.PROMOTE, json={"term": 3})).status == 202  # still promoting
    fake.is_ready = True
    assert (await client.post(P.PROMOTE, json={"term": 3})).status == 200  # done
    assert len(fake.changes) == 1
    assert (await client.post(P.PROMOTE, json={"term": 2})).status == 409


async def test_promote_needs_a_newer_term_and_a_valid_body(
    reader: tuple[FakeManager, Client],
) -> None:
    fake, client = reader
    assert (await client.post(P.PROMOTE, json={"term": 2})).status == 409
    assert (await client.post(P.PROMOTE, json={"term": "3"})).status == 400
    assert (await client.post(P.PROMOTE, data=b"nope")).status == 400
    assert fake.changes == []


async def test_demote_repoints_and_refuses_older_terms(
    reader: tuple[FakeManager, Client],
) -> None:
    fake, client = reader
    assert (await client.post(P.DEMOTE, json={"term": 3, "writer": "n:5432"})).status == 202
    assert fake.intent == Intent(contract.ROLE_READER, 3, "n:5432")
    assert (
        await client.post(P.DEMOTE, json={"term": 3, "writer": "n:5432"})
    ).status == 202  # same: idempotent
    assert (await client.post(P.DEMOTE, json={"term": 3, "writer": "x:5432"})).status == 409
    assert (await client.post(P.DEMOTE, json={"term": 4})).status == 400
    assert len(fake.changes) == 1


async def test_probes(reader: tuple[FakeManager, Client]) -> None:
    fake, client = reader
    assert (await client.get(P.LIVENESS)).status == 200
    assert (await client.get(P.READINESS)).status == 503
    fake.is_ready = True
    assert (await client.get(P.READINESS)).status == 200
    assert "quorumdb_instance_term 2" in await (await client.get(P.METRICS)).text()


async def test_changes_need_the_control_token_and_nothing_changes_without_it(
    reader: tuple[FakeManager, Client],
) -> None:
    fake, client = reader
    for headers in ({control.HEADER: ""}, {control.HEADER: "Bearer not-the-token"}, {control.HEADER: TOKEN}):
        for path, body in ((P.PROMOTE, {"term": 9}), (P.DEMOTE, {"term": 9, "writer": "x:5432"})):
            answer = await client.post(path, json=body, headers=headers)
            assert answer.status in (401, 403), (path, headers, answer.status)
    assert fake.changes == []
    assert (await client.get(P.STATUS, headers={control.HEADER: ""})).status == 200  # reads stay open


async def test_switch_wal_answers_the_switch_point_on_a_ready_writer_only(
    reader: tuple[FakeManager, Client],
) -> None:
    fake, client = reader
    assert (await client.post(P.SWITCH_WAL)).status == 409  # a reader
    fake.intent, fake.is_ready = Intent(contract.ROLE_WRITER, 3, None), True
    response = await client.post(P.SWITCH_WAL)
    assert response.status == 200 and await response.json() == {"lsn": "0/5000000"}


GARBAGE: list[bytes] = [
    b"",
    b"{",
    b"null",
    b"[1]",
    b'"x"',
    bytes(range(256)),
    b"[" * 100_000 + b"]" * 100_000,
]
BAD_TERMS = [b'{"term": "9"}', b'{"term": 9.5}', b'{"term": true}', b'{"term": -9}', b'{"term": 1e999}']
WRONG = {
    P.PROMOTE: BAD_TERMS,
    P.DEMOTE: [*BAD_TERMS, b'{"term": 9, "writer": 5}', b'{"term": 9}'],
    P.PAUSE: [b'{"wakes": "1"}', b'{"wakes": -1}', b'{"wakes": false}'],
    P.BACKUPS: [
        b'{"id": 5}',
        b'{"id": "a b"}',
        b'{"id": "x", "prefix": "../up"}',
        b'{"id": "x", "reason": 1}',
    ],
}


@pytest.mark.parametrize("path", sorted(WRONG))
async def test_malformed_bodies_get_400_and_change_nothing(
    reader: tuple[FakeManager, Client], path: str
) -> None:
    fake, client = reader
    for body in [*GARBAGE, *WRONG[path]]:
        answer = await client.post(path, data=body, headers={"Content-Type": "application/json"})
        assert answer.status == 400, (path, body[:40], answer.status, (await answer.text())[:200])
    assert fake.changes == []
    assert (await client.get(P.STATUS)).status == 200
