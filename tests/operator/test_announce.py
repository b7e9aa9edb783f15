"""A writer change's Events come from the status that records it, under names that make them exactly-once
(rendered here; ``test_handlers`` shows a restarted operator posting them once)."""

from __future__ import annotations

import datetime

from aurora_operator.reconcile import announce

from . import factories

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


def change(kind: str = "failover", term: int = 4, **kw: object) -> dict[str, object]:
    started = (NOW - datetime.timedelta(seconds=6)).isoformat()
    base = {"kind": kind, "from": "demo-instance-0", "to": "demo-instance-1", "term": term}
    return base | {"reason": "pod of demo-instance-0 is gone", "startedAt": started} | kw


def test_a_change_in_progress_is_started_and_a_finished_one_completed() -> None:
    done = change(term=3, completedAt=(NOW - datetime.timedelta(seconds=1)).isoformat(), seconds=4.5)
    c = factories.cluster(status={"failover": change(kind="switchover"), "lastFailover": done, "term": 4})
    events = announce.writer_changes(c, c.status, NOW, "quorumdb-operator")
    assert [(e["metadata"]["name"], e["type"], e["reason"]) for e in events] == [
        ("demo.uid-1.switchover-4-started", "Normal", "SwitchoverStarted"),
        ("demo.uid-1.failover-3-completed", "Normal", "FailoverCompleted"),
    ]
    completed = events[1]
    assert "4.5s after the decision" in completed["message"]
    assert completed["firstTimestamp"] == "2026-11-30T11:59:59Z"
    assert completed["involvedObject"] == {
        "apiVersion": "quorumdb.io/v1alpha1", "kind": "AuroraCluster", "name": "demo", "namespace": "db",
        "uid": "uid-1",
    }  # fmt: skip


def test_a_failover_starts_as_a_warning() -> None:
    c = factories.cluster(status={"failover": change(), "term": 4})
    [event] = announce.writer_changes(c, c.status, NOW, "x")
    assert (event["type"], event["reason"]) == ("Warning", "FailoverStarted")
    assert "promoting demo-instance-1 at term 4" in event["message"]


def test_changes_older_than_the_window_are_not_announced_again() -> None:
    old = NOW - announce.FRESH - datetime.timedelta(seconds=1)
    done = change(startedAt=old.isoformat(), completedAt=old.isoformat(), seconds=2.0)
    c = factories.cluster(status={"lastFailover": done, "failover": change(startedAt=old.isoformat())})
    assert announce.writer_changes(c, c.status, NOW, "x") == []
