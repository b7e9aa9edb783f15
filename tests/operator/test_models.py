"""The API models accept what the CRD accepts and reject bad input with a message naming the field."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from aurora_api.v1alpha1.cluster import AuroraClusterSpec
from aurora_api.v1alpha1.snapshot import AuroraSnapshotSpec

from . import factories

ZONES = {"zones": {"values": factories.ZONES}}


def spec(**extra: Any) -> dict[str, Any]:
    return {"storage": ZONES} | extra


def test_minimal_spec_gets_documented_defaults() -> None:
    s = AuroraClusterSpec.model_validate(spec())
    assert s.engine.version == "15"
    assert s.instances.readers == 1
    assert s.instances.tier(0) == 1
    assert s.storage.zones.topology_key == "topology.kubernetes.io/zone"
    assert s.storage.volume_size == "1Gi"
    assert s.storage.reclaim_policy == "Delete"
    assert s.backup is None
    assert s.maintenance.window == "sun:03:00-sun:04:00"
    assert s.deletion_protection is False


def test_camel_case_on_the_wire() -> None:
    s = AuroraClusterSpec.model_validate(
        spec(
            instances={
                "readers": 3,
                "promotionTiers": [0, 2],
                "serverless": {"minCapacity": 0, "maxCapacity": 8, "secondsUntilAutoPause": 600},
            },
            deletionProtection=True,
        )
    )
    assert s.instances.tier(1) == 2 and s.instances.tier(2) == 1
    assert s.instances.serverless is not None and s.instances.serverless.seconds_until_auto_pause == 600
    dumped = s.model_dump(by_alias=True, exclude_defaults=True)
    assert dumped["instances"]["serverless"]["maxCapacity"] == 8
    assert dumped["deletionProtection"] is True


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"instances": {"readers": 16}}, "readers"),
        ({"instances": {"readers": -1}}, "readers"),
        ({"instances": {"promotionTiers": [0, 16]}}, "promotionTiers"),
        ({"instances": {"serverless": {"minCapacity": 0.3}}}, "minCapacity"),
        ({"instances": {"serverless": {"maxCapacity": 256.5}}}, "maxCapacity"),
        ({"instances": {"serverless": {"minCapacity": 8, "maxCapacity": 4}}}, "minCapacity must not exceed"),
        (
            {"instances": {"serverless": {"minCapacity": 1, "secondsUntilAutoPause": 600}}},
            "secondsUntilAutoPause",
        ),
        (
            {"instances": {"serverless": {"minCapacity": 0, "secondsUntilAutoPause": 9}}},
            "secondsUntilAutoPause",
        ),
        ({"instances": {"resources": {}, "serverless": {}}}, "mutually exclusive"),
        ({"instances": {"resources": {"requests": {"gpu": 1}}}}, "requests"),
        ({"storage": {"zones": {"values": ["a", "b"]}}}, "values"),
        ({"storage": {"zones": {"values": ["a", "a", "b"]}}}, "distinct"),
        ({"storage": {"zones": ZONES["zones"], "volumeSize": "ten gigs"}}, "volumeSize"),
        ({"storage": {"zones": ZONES["zones"], "reclaimPolicy": "Keep"}}, "reclaimPolicy"),
        ({"engine": {"version": "16"}}, "version"),
        (
            {
                "backup": {
                    "objectStore": {
                        "endpoint": "minio:9000",
                        "bucket": "b1b",
                        "credentialsSecret": {"name": "s"},
                    }
                }
            },
            "endpoint",
        ),
        (
            {
                "backup": {
                    "retentionDays": 36,
                    "objectStore": {
                        "endpoint": "http://m",
                        "bucket": "bkt",
                        "credentialsSecret": {"name": "s"},
                    },
                }
            },
            "retentionDays",
        ),
        ({"maintenance": {"window": "sunday 3am"}}, "window"),
        ({"postgresql": {"parameters": {"port": "5433"}}}, "managed by QuorumDB"),
        ({"replicas": 3}, "replicas"),
    ],
)
def test_bad_input_is_rejected_naming_the_field(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as err:
        AuroraClusterSpec.model_validate(spec() | patch)
    assert field in str(err.value)


def test_acu_accepts_half_steps_and_zero() -> None:
    for low, high in [(0, 0.5), (0.5, 0.5), (1.5, 256), (0, 128.5)]:
        s = AuroraClusterSpec.model_validate(
            spec(instances={"serverless": {"minCapacity": low, "maxCapacity": high}})
        )
        assert s.instances.serverless is not None


def test_storage_zones_are_required() -> None:
    with pytest.raises(pydantic.ValidationError, match="storage"):
        AuroraClusterSpec.model_validate({})


def test_snapshot_spec() -> None:
    s = AuroraSnapshotSpec.model_validate({"clusterName": "demo"})
    assert s.deletion_policy == "Retain"
    with pytest.raises(pydantic.ValidationError, match="clusterName"):
        AuroraSnapshotSpec.model_validate({"clusterName": "Not_A_Name"})
