"""The autoscaler's decision (pure): quick up on sustained pressure, slow down with hysteresis, followers."""

from __future__ import annotations

from aurora_api import capacity
from aurora_api.reports import LoadReport
from aurora_operator.reconcile import autoscale
from aurora_operator.reconcile.autoscale import InstanceView, Sample

GIB = capacity.GIB


def busy(at: float, cores: float, memory: float = 0.3) -> Sample:
    return Sample(at, cores, int(memory * GIB), 8)


def view(
    name: str = "i0", role: str = "writer", tier: int = 1, current: float = 0.5, **kw: object
) -> InstanceView:
    return InstanceView(
        name=name, role=role, tier=tier, current=current, samples=kw.pop("samples", ()),  # type: ignore[arg-type]
        last_change=kw.pop("last_change", None), resizing=bool(kw.pop("resizing", False)),  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_rate_comes_from_two_cumulative_reports_and_not_across_a_restart() -> None:
    a = LoadReport(sampled_at=10, cpu_seconds=5, memory_working_set_bytes=100)
    b = LoadReport(sampled_at=12, cpu_seconds=6, memory_working_set_bytes=200, connections=3)
    s = autoscale.sample(a, b, 99)
    assert s == Sample(99, 0.5, 200, 3)
    restarted = LoadReport(sampled_at=13, cpu_seconds=0.1)
    assert autoscale.sample(b, restarted, 100) is None


def test_a_throttled_instance_doubles_after_two_samples_not_one() -> None:
    one = [busy(2, 0.25)]  # 0.5 ACU = 0.25 cores: saturated
    assert autoscale.own_target(one, 0.5, 0.5, 4, None, 2).acu == 0.5
    two = [busy(2, 0.25), busy(4, 0.25)]
    target = autoscale.own_target(two, 0.5, 0.5, 4, None, 4)
    assert target.acu == 1.0
    assert "0.25 of 0.25 cores" in target.reason


def test_up_goes_straight_to_what_the_load_needs_and_stops_at_max() -> None:
    samples = [busy(2, 1.4), busy(4, 1.4)]  # at 1 ACU (0.5 cores) this is impossible, but say it was seen
    assert autoscale.own_target(samples, 1, 0.5, 16, None, 4).acu == 4.0  # 1.4 / (0.5 * 0.7) = 4
    assert autoscale.own_target(samples, 1, 0.5, 2, None, 4).acu == 2.0


def test_memory_pressure_scales_up_too() -> None:
    samples = [busy(2, 0.01, memory=1.5), busy(4, 0.01, memory=1.5)]  # 1.5 GiB of 1 GiB... at 80 %
    assert autoscale.own_target(samples, 0.5, 0.5, 4, None, 4).acu == 1.0


def test_down_needs_a_whole_quiet_minute_and_halves_at_most() -> None:
    quiet = [busy(t, 0.01) for t in range(0, 62, 2)]
    assert autoscale.own_target(quiet[:20], 4, 0.5, 4, None, 38).acu == 4  # 38 s of history
    target = autoscale.own_target(quiet, 4, 0.5, 4, None, 60)
    assert target.acu == 2  # half, not straight to 0.5
    assert autoscale.own_target(quiet, 2, 0.5, 4, 50, 60).reason == "cooling down after the last change"
    noisy = [*quiet[:-1], busy(60, 0.6)]  # one sample still needs 2 ACU
    assert autoscale.own_target(noisy, 4, 0.5, 4, None, 60).acu == 2
    assert autoscale.own_target(noisy, 2, 0.5, 4, None, 60).acu == 2


def test_hysteresis_no_flapping_at_a_steady_load() -> None:
    # 0.6 cores needs 1.71 -> 2 ACU; at 2 ACU (1 core) it is 60 %: no further move either way.
    steady = [busy(t, 0.6) for t in range(0, 62, 2)]
    assert autoscale.own_target(steady, 2, 0.5, 4, None, 60).acu == 2


def test_a_capacity_outside_the_range_is_brought_into_it() -> None:
    assert autoscale.own_target([], 0.5, 1, 4, None, 0).acu == 1
    assert autoscale.own_target([], 8, 1, 4, None, 0).acu == 4


def test_tier_0_and_1_readers_follow_the_writer_others_follow_their_load() -> None:
    hot = (busy(2, 0.25), busy(4, 0.25))
    views = [
        view("w", samples=hot),
        view("r1", role="reader", tier=1),
        view("r2", role="reader", tier=2),
    ]
    targets = autoscale.targets(views, 0.5, 4, 4)
    assert targets["w"].acu == 1
    assert targets["r1"].acu == 1 and "follows the writer w" in targets["r1"].reason
    assert targets["r2"].acu == 0.5


def test_no_decision_while_a_resize_is_in_flight_and_a_refused_size_is_a_ceiling() -> None:
    hot = (busy(2, 2), busy(4, 2))
    assert "w" not in autoscale.targets([view("w", samples=hot, resizing=True)], 0.5, 8, 4)
    capped = InstanceView("w", "writer", 1, 2, hot, None, False, ceiling=3)
    assert autoscale.targets([capped], 0.5, 8, 4)["w"].acu == 3


def test_pause_is_not_a_running_capacity() -> None:
    assert autoscale.targets([view("w", current=0.5)], 0, 4, 0)["w"].acu == 0.5


def test_pod_capacity_is_what_the_kubelet_applied() -> None:
    pod = {
        "spec": {"containers": [{"name": "postgres", "resources": {"limits": {"memory": "8Gi"}}}]},
        "status": {"containerStatuses": [{"name": "postgres", "resources": {"limits": {"memory": "2Gi"}}}]},
    }
    assert autoscale.pod_acu(pod) == 1
    assert autoscale.wanted_acu(pod) == 4
    del pod["status"]["containerStatuses"]
    assert autoscale.pod_acu(pod) == 4


def test_capacity_model() -> None:
    assert capacity.resources(2) == {
        "requests": {"cpu": "500m", "memory": "4096Mi"},
        "limits": {"cpu": "1000m", "memory": "4096Mi"},
    }
    assert capacity.static_parameters(0.5) == {"shared_buffers": "256MB", "max_connections": "500"}
    assert capacity.live_parameters(4 * GIB) == {
        "effective_cache_size": "3072MB", "work_mem": "16MB", "maintenance_work_mem": "256MB"
    }  # fmt: skip
    assert capacity.fitting(2, 24 * GIB) == 8  # a 2-core kind node: CPU requests bind first
    assert capacity.acu_of_memory(int(1.5 * GIB)) == 0.5
