"""docs/examples/ holds what the docs promise: valid manifests parse, the invalid one fails loudly."""

from __future__ import annotations

import pathlib

import pydantic
import pytest
import yaml
from aurora_api.v1alpha1.cluster import AuroraCluster, AuroraClusterSpec
from aurora_api.v1alpha1.snapshot import AuroraSnapshot

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "docs" / "examples"
VALID = ["aurora-demo.yaml", "aurora-serverless.yaml", "aurora-serverless-data-api.yaml", "snapshot.yaml"]


@pytest.mark.parametrize("name", VALID)
def test_valid_examples_parse(name: str) -> None:
    body = yaml.safe_load((EXAMPLES / name).read_text())
    body["metadata"].setdefault("namespace", "default")
    model = AuroraCluster if body["kind"] == "AuroraCluster" else AuroraSnapshot
    model.model_validate(body)


def test_demo_is_the_acceptance_topology() -> None:
    body = yaml.safe_load((EXAMPLES / "aurora-demo.yaml").read_text())
    spec = AuroraClusterSpec.model_validate(body["spec"])
    assert spec.instances.readers == 2
    assert spec.storage.zones.values == ["zone-a", "zone-b", "zone-c"]  # the kind test bed's zones


def test_invalid_example_fails_on_every_advertised_field() -> None:
    body = yaml.safe_load((EXAMPLES / "invalid-cluster.yaml").read_text())
    with pytest.raises(pydantic.ValidationError) as err:
        AuroraClusterSpec.model_validate(body["spec"])
    text = str(err.value)
    for field in ("readers", "minCapacity", "values", "managed by QuorumDB", "caSecret needs an https://"):
        assert field in text
