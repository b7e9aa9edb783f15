"""The autoscaler's pass against FakeKube and FakeInstances: reports in, resizes and Events out."""

from __future__ import annotations

from typing import Any

from aurora_api import capacity, contract
from aurora_api.reports import InstanceReport, LoadReport
from aurora_operator.instances import FakeInstances
from aurora_operator.kube import FakeKube
from aurora_operator.reconcile import autoscale_pass
from aurora_operator.render import names

from tests.operator import factories

SPEC = {
    "instances": {
        "readers": 1,
        "promotionTiers": [1, 1],
        "serverless": {"minCapacity": 0.5, "maxCapacity": 4},
    }
}


def pod(c: Any, ordinal: int, acu: float) -> dict[str, Any]:
    labels = {contract.LABEL_CLUSTER: "demo", contract.LABEL_COMPONENT: contract.COMPONENT_INSTANCE,
              contract.LABEL_INSTANCE: names.instance(c, ordinal)}  # fmt: skip
    p = factories.pod(names.instance_pod(c, ordinal), labels)
    resources = capacity.resources(acu)
    p["metadata"]["uid"] = f"uid-{ordinal}"
    p["spec"]["containers"] = [{"name": "postgres", "resources": resources}]
    p["status"]["podIP"] = f"10.0.0.{ordinal}"
    p["status"]["containerStatuses"] = [
        {"name": "postgres", "resources": resources, "state": {"running": {}}}
    ]
    return p


async def scale(
    kube: FakeKube, instances: FakeInstances, c: Any, memory: autoscale_pass.Memory, now: float
) -> autoscale_pass.Result:
    return await autoscale_pass.run(kube, c, await autoscale_pass.look(kube, instances, c), memory, now)


def report(role: str, cpu_seconds: float, at: float) -> InstanceReport:
    load = LoadReport(
        sampled_at=at, cpu_seconds=cpu_seconds, memory_working_set_bytes=300 << 20, connections=4
    )
    return InstanceReport(role=role, term=1, ready=True, load=load)  # type: ignore[arg-type]


async def test_a_throttled_writer_is_resized_in_place_and_its_tier_1_reader_follows() -> None:
    c = factories.cluster(SPEC)
    kube, instances = FakeKube(), FakeInstances()
    for ordinal in (0, 1):
        kube.put(pod(c, ordinal, 0.5))
    memory = autoscale_pass.Memory()
    url = f"http://10.0.0.{{}}:{contract.INSTANCE_HTTP_PORT}"
    events: list[tuple[str, str, str]] = []
    for step in range(3):  # the writer burns its whole 0.25-core limit; the reader idles
        t = 2.0 * step
        instances.reports[url.format(0)] = report("writer", 0.25 * t, t)
        instances.reports[url.format(1)] = report("reader", 0.001 * t, t)
        events += (await scale(kube, instances, c, memory, 100 + t)).events
    resized = [call for call in kube.calls if call.startswith("resize")]
    assert resized == ["resize Pod/demo-instance-0-0", "resize Pod/demo-instance-1-0"]
    writer = kube.objects["Pod", "db", "demo-instance-0-0"]
    assert writer["spec"]["containers"][0]["resources"] == capacity.resources(1)
    assert writer["metadata"]["annotations"][contract.ANNOTATION_TARGET_ACU] == "1"
    assert [e[1] for e in events] == ["Scaled", "Scaled"]
    assert "demo-instance-0 up from 0.5 to 1 ACU: CPU 0.25 of 0.25 cores" in events[0][2]
    assert "follows the writer demo-instance-0" in events[1][2]


async def test_a_pod_whose_resize_is_still_in_progress_is_left_alone() -> None:
    c = factories.cluster(SPEC)
    kube, instances = FakeKube(), FakeInstances()
    busy = pod(c, 0, 0.5)
    busy["status"]["conditions"].append({"type": "PodResizeInProgress", "status": "True"})
    kube.put(busy)
    memory = autoscale_pass.Memory()
    url = f"http://10.0.0.0:{contract.INSTANCE_HTTP_PORT}"
    for step in range(3):
        instances.reports[url] = report("writer", 0.5 * step, 2.0 * step)
        await scale(kube, instances, c, memory, 100 + 2.0 * step)
    assert not [call for call in kube.calls if call.startswith("resize")]


async def test_an_infeasible_resize_is_reported_once_and_becomes_the_ceiling() -> None:
    c = factories.cluster(SPEC)
    kube, instances = FakeKube(), FakeInstances()
    refused = pod(c, 0, 2)
    refused["spec"]["containers"][0]["resources"] = capacity.resources(4)  # asked 4, still holds 2
    pending = {"type": "PodResizePending", "status": "True", "reason": "Infeasible"}
    refused["status"]["conditions"].append(pending | {"message": "Node didn't have enough capacity"})
    kube.put(refused)
    memory = autoscale_pass.Memory()
    url = f"http://10.0.0.0:{contract.INSTANCE_HTTP_PORT}"
    events = []
    for step in range(3):  # saturated at 2 ACU: would ask for 4 again
        instances.reports[url] = report("writer", 1.0 * 2 * step, 2.0 * step)
        events += (await scale(kube, instances, c, memory, 100 + 2.0 * step)).events
    assert [e[1] for e in events] == ["ScaleRefused", "Scaled"]
    assert kube.objects["Pod", "db", "demo-instance-0-0"]["spec"]["containers"][0]["resources"] == (
        capacity.resources(3.5)
    )


async def test_a_resize_asked_but_not_yet_applied_is_not_asked_again() -> None:
    c = factories.cluster(SPEC)
    kube, instances = FakeKube(), FakeInstances()
    asked = pod(c, 0, 0.5)
    asked["spec"]["containers"][0]["resources"] = capacity.resources(1)  # the kubelet has not acted yet
    kube.put(asked)
    memory = autoscale_pass.Memory()
    url = f"http://10.0.0.0:{contract.INSTANCE_HTTP_PORT}"
    for step in range(3):
        instances.reports[url] = report("writer", 0.25 * 2 * step, 2.0 * step)
        assert (await scale(kube, instances, c, memory, 100 + 2.0 * step)).events == []
    assert not [call for call in kube.calls if call.startswith("resize")]


async def test_a_resize_the_node_deferred_is_withdrawn_when_the_load_is_gone() -> None:
    c = factories.cluster(SPEC)
    kube, instances = FakeKube(), FakeInstances()
    deferred = pod(c, 0, 2)
    deferred["spec"]["containers"][0]["resources"] = capacity.resources(4)  # asked 4, the node said later
    deferred["status"]["conditions"].append(
        {"type": "PodResizePending", "status": "True", "reason": "Deferred"}
    )
    kube.put(deferred)
    memory = autoscale_pass.Memory()
    url = f"http://10.0.0.0:{contract.INSTANCE_HTTP_PORT}"
    events = []
    for step in range(33):  # 0.6 cores for a minute: 2 ACU is right, the 4 asked are not needed any more
        instances.reports[url] = report("writer", 0.6 * 2 * step, 2.0 * step)
        events += (await scale(kube, instances, c, memory, 100 + 2.0 * step)).events
    assert kube.objects["Pod", "db", "demo-instance-0-0"]["spec"]["containers"][0]["resources"] == (
        capacity.resources(2)
    )
    assert len(events) == 1 and "stays at 2 ACU (the 4 ACU asked is withdrawn)" in events[0][2]
