"""The kopf glue: handlers are registered level-based, write status explicitly and post Events.

Driven through kopf's own event queue (its context variables), with ``FakeKube`` as the API: no mocks.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

import kopf
import pytest
from aurora_operator import handlers
from aurora_operator.kube import FakeKube
from aurora_operator.settings import Settings
from kopf._core.engines import posting

from . import factories


def registered() -> dict[str, set[str]]:
    reg = kopf.get_default_registry()
    found: dict[str, set[str]] = {}
    for h in reg._changing.get_all_handlers():
        found.setdefault(h.id, set()).add(str(h.reason or "resume"))
    for timer in reg._spawning.get_all_handlers():
        found.setdefault(timer.id, set()).add("timer")
    return found


def test_cluster_handlers_are_level_based() -> None:
    found = registered()
    assert found["reconcile_cluster"] == {"resume", "create", "update", "timer"}
    assert "delete" in found["delete_cluster"]


def capture_events() -> asyncio.Queue[Any]:
    """Route kopf.event()/info()/warn() of this test into a queue, as kopf's poster task would see them."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    posting.event_queue_var.set(queue)
    posting.event_queue_loop_var.set(asyncio.get_running_loop())
    settings = kopf.OperatorSettings()
    settings.posting.level = logging.WARNING  # as handlers.configure sets it: our Events must still flow
    posting.settings_var.set(settings)
    return queue


# Called directly, the decorated functions are plain coroutines; kopf's handler Protocols would want every
# kwarg kopf passes, so they are typed loosely here.
reconcile_cluster: Any = handlers.reconcile_cluster
delete_cluster: Any = handlers.delete_cluster


def body(spec: dict[str, Any] | None = None) -> kopf.Body:
    raw: Any = factories.body(spec)
    return kopf.Body(raw)


def memo(kube: FakeKube) -> kopf.Memo:
    return kopf.Memo(
        kube=kube,
        settings=Settings(),
        locks={},
        last_resync={},
        storage=None,
        instances=None,
        silence={},
        announced=set(),
    )


def drain(queue: asyncio.Queue[Any]) -> list[tuple[str, str]]:
    found = []
    while not queue.empty():
        event = queue.get_nowait()
        found.append((event.type, event.reason))
    return found


async def test_reconcile_handler_writes_status_and_events() -> None:
    events = capture_events()
    kube = FakeKube(factories.nodes())
    kube.put(dict(body()))  # a pass re-reads the AuroraCluster as stored
    patch = kopf.Patch()
    await reconcile_cluster(body=body(), patch=patch, memo=memo(kube))
    assert "status" not in patch  # written by the pass itself, under the cluster's lock
    status = kube.objects["AuroraCluster", "db", "demo"]["status"]
    assert status["phase"] == "Provisioning"
    assert status["writer"] == "demo-instance-0" and status["term"] == 1
    assert any(c["type"] == "StorageQuorum" for c in status["conditions"])
    posted = drain(events)
    assert ("Normal", "SecretCreated") in posted and ("Normal", "Provisioning") in posted


async def test_invalid_spec_reaching_the_operator_fails_visibly() -> None:
    events = capture_events()
    patch = kopf.Patch()
    kube = FakeKube()
    await reconcile_cluster(body=body({"instances": {"readers": 99}}), patch=patch, memo=memo(kube))
    assert patch["status"]["phase"] == "Failed"
    assert "readers" in patch["status"]["conditions"][0]["message"]
    assert drain(events) == [("Warning", "InvalidSpec")]
    assert kube.objects == {}


async def test_deletion_protection_holds_the_finalizer() -> None:
    events = capture_events()
    with pytest.raises(kopf.TemporaryError, match="deletion protection"):
        await delete_cluster(
            body=body({"deletionProtection": True}), patch=kopf.Patch(), memo=memo(FakeKube())
        )
    assert drain(events) == [("Warning", "DeletionProtected")]
    patch = kopf.Patch()
    await delete_cluster(body=body(), patch=patch, memo=memo(FakeKube()))
    assert patch["status"]["phase"] == "Deleting"
    assert drain(events) == [("Normal", "Deleting")]


async def test_a_completion_written_by_a_stopped_operator_is_posted_once_by_its_successor() -> None:
    # Given a failover its operator completed in status and then stopped before any Event was posted,
    capture_events()
    now = datetime.datetime.now(datetime.UTC).isoformat()
    done = {
        "kind": "failover",
        "from": "demo-instance-0",
        "to": "demo-instance-1",
        "term": 4,
        "reason": "pod of demo-instance-0 is gone",
        "startedAt": now,
        "completedAt": now,
        "seconds": 3.2,
    }
    raw: Any = factories.body(status={"writer": "demo-instance-1", "term": 4, "lastFailover": done})
    kube = FakeKube(factories.nodes())
    kube.put(raw)
    # when two operator processes (fresh memos: a restart) each run passes,
    for _ in range(2):
        fresh = memo(kube)
        for _ in range(2):
            await reconcile_cluster(body=kopf.Body(raw), patch=kopf.Patch(), memo=fresh)
    # then the completion is there as one Event.
    name = "demo.uid-1.failover-4-completed"
    assert kube.objects["Event", "db", name]["reason"] == "FailoverCompleted"
    assert kube.calls.count(f"create Event/{name}") == 1
    assert [k for k in kube.objects if k[0] == "Event"] == [("Event", "db", name)]
