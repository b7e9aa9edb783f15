"""The auto-pause decision (pure): when a pause starts, its order, what cancels it, the resume."""

from __future__ import annotations

import datetime

from aurora_api.reports import InstanceReport, Intent, LoadReport
from aurora_api.v1alpha1.cluster import PauseStatus
from aurora_operator.reconcile import pause
from aurora_operator.reconcile.pause import Member

T0 = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def member(
    name: str, clients: int | None = 0, *, paused: bool = False, running: bool = True, wakes: int = 0,
    ready: bool = True, released: bool = False,
) -> Member:  # fmt: skip
    report = InstanceReport(
        intent=Intent(role="writer" if name == "i0" else "reader", term=1, writer=None),
        load=LoadReport(sampled_at=0, connections=clients), paused=paused, postmaster_running=running,
        wakes=wakes, ready=ready and running and not paused,
    )  # fmt: skip
    return Member(name, report, released)


def record(state: str, since: float = 0, wakes: dict[str, int] | None = None) -> PauseStatus:
    return PauseStatus.model_validate(
        {"state": state, "since": at(since), "wakes": wakes or {"i0": 0, "i1": 0}}
    )


def decide(rec: PauseStatus | None, members: list[Member], now: float, **kw: object) -> pause.Plan:
    timeout = kw.get("timeout", 30)
    idle = float(kw.get("idle", 0))  # type: ignore[arg-type]
    blocked = kw.get("blocked")
    return pause.decide(rec, timeout, idle, blocked, "i0", members, at(now))  # type: ignore[arg-type]


def test_a_pause_starts_only_after_the_timeout_with_nothing_else_going_on() -> None:
    idle = [member("i0"), member("i1", wakes=4)]
    assert decide(None, idle, 0, idle=29).record is None
    assert decide(None, idle, 0, idle=31, blocked="a rolling update runs").record is None
    assert decide(None, idle, 0, idle=31, timeout=None).record is None
    started = decide(None, idle, 0, idle=31)
    assert started.changed and started.record is not None
    assert (started.record.state, started.record.wakes) == ("Pausing", {"i0": 0, "i1": 4})
    assert started.pause == ()  # the endpoints switch first; nothing is stopped in the same pass
    assert (
        pause.idle(idle)
        and not pause.idle([member("i0", clients=1)])
        and not pause.idle([member("i0", None)])
    )


def test_instances_are_asked_with_the_wakes_seen_idle_once_the_endpoints_switched() -> None:
    rec = record("Pausing", wakes={"i0": 0, "i1": 4})
    members = [member("i0"), member("i1", wakes=4)]
    assert decide(rec, members, pause.SWITCH_SECONDS - 1).pause == ()
    assert decide(rec, members, pause.SWITCH_SECONDS + 1).pause == (("i0", 0), ("i1", 4))


def test_a_client_or_a_wake_during_the_pause_cancels_it() -> None:
    rec = record("Pausing")
    connected = decide(rec, [member("i0", clients=2), member("i1", paused=True, running=False)], 5)
    assert connected.record is not None and connected.record.state == "Resuming"
    assert "i0 has 2 client connections" in connected.record.message
    woken = decide(rec, [member("i0", wakes=1), member("i1")], 5)
    assert woken.record is not None and woken.record.state == "Resuming"
    stuck = decide(rec, [member("i0", paused=True), member("i1")], pause.GIVE_UP_SECONDS + 1)
    assert stuck.record is not None and stuck.record.state == "Resuming"


def test_paused_once_every_instance_stopped_and_then_the_requests_are_released() -> None:
    stopped = [member("i0", None, paused=True, running=False), member("i1", None, paused=True, running=False)]
    done = decide(record("Pausing"), stopped, 10)
    assert done.record is not None and done.record.state == "Paused"
    assert done.shrink == ("i0", "i1") and done.event is not None and done.event[1] == "Paused"
    half = [stopped[0], member("i1", None, paused=True, running=False, released=True)]
    assert decide(record("Paused"), half, 20).shrink == ("i0",)


def test_a_woken_instance_resumes_the_cluster_which_ends_when_the_writer_serves_at_full_size() -> None:
    woken = [member("i0", 1), member("i1", None, paused=True, running=False, released=True)]
    resuming = decide(record("Paused"), woken, 100)
    assert resuming.record is not None and resuming.record.state == "Resuming"
    step = decide(record("Resuming", 100), [member("i0", 1, released=True), woken[1]], 101)
    assert (step.resume, step.grow, step.record is not None) == (("i1",), ("i0", "i1"), True)
    done = decide(record("Resuming", 100), [member("i0", 1), member("i1", ready=False)], 102.5)
    assert done.changed and done.record is None
    assert done.event == ("Normal", "Resumed", "resumed: the writer serves 2.5s after the resume began")


def test_turning_auto_pause_off_resumes_a_paused_cluster() -> None:
    stopped = [member("i0", None, paused=True, running=False)]
    off = decide(record("Paused"), stopped, 10, timeout=None)
    assert off.record is not None and off.record.state == "Resuming"


def test_the_idle_clock_runs_only_while_the_cluster_runs_so_a_resumed_cluster_does_not_pause_at_once() -> (
    None
):
    idle = [member("i0"), member("i1")]
    # idle since the first pass that saw no client, and it keeps that start,
    assert pause.idle_since(None, None, idle, 100.0) == 100.0
    assert pause.idle_since(100.0, None, idle, 140.0) == 100.0
    # a client resets it,
    assert pause.idle_since(100.0, None, [member("i0", clients=1), member("i1")], 150.0) is None
    # and while a pause or a resume is recorded it does not run (a client it served may have come and gone
    # between two passes): the clock starts again once the cluster runs.
    for state in ("Pausing", "Paused", "Resuming"):
        assert pause.idle_since(100.0, record(state), idle, 160.0) is None
    assert pause.idle_since(None, None, idle, 170.0) == 170.0
