"""CRDs are generated from the models, structural, carry the promised rules, and never drift from the repo."""

from __future__ import annotations

import pathlib
from typing import Any, Literal

import pytest
import yaml
from aurora_api import gen
from aurora_api.crd import definitions, schema, structural
from pydantic import BaseModel

ROOT = pathlib.Path(__file__).resolve().parents[2]


def version(crd: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = crd["spec"]["versions"][0]
    return result


def open_api(crd: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = version(crd)["schema"]["openAPIV3Schema"]
    return result


def spec_schema(path: str) -> dict[str, Any]:
    node: dict[str, Any] = open_api(definitions.cluster_crd())["properties"]["spec"]
    for part in path.split("."):
        node = node["properties"][part]
    return node


def rules(node: dict[str, Any]) -> list[str]:
    return [r["rule"] for r in node.get("x-kubernetes-validations", [])]


@pytest.mark.parametrize("name", sorted(definitions.all_crds()))
def test_every_crd_schema_is_structural(name: str) -> None:
    assert structural.violations(open_api(definitions.all_crds()[name])) == []


def test_committed_crds_match_the_models() -> None:
    stale = gen.drift(ROOT)
    assert stale == [], f"run `python -m aurora_api.gen` and commit: {stale}"


def test_chart_and_top_level_crds_are_identical() -> None:
    for top in (ROOT / "crds").glob("*.yaml"):
        assert (ROOT / "charts/quorumdb/crds" / top.name).read_text() == top.read_text()


def test_generated_yaml_parses_back_to_the_definitions() -> None:
    for name, crd in definitions.all_crds().items():
        assert yaml.safe_load((ROOT / "crds" / name).read_text()) == crd


def test_cluster_crd_shape() -> None:
    crd = definitions.cluster_crd()
    names = crd["spec"]["names"]
    assert crd["metadata"]["name"] == "auroraclusters.quorumdb.io"
    assert crd["spec"]["scope"] == "Namespaced"
    assert names["shortNames"] == ["aurora", "qdb"]
    assert version(crd)["name"] == "v1alpha1"
    assert version(crd)["subresources"]["status"] == {}
    assert version(crd)["subresources"]["scale"]["specReplicasPath"] == ".spec.instances.readers"
    columns = [c["name"] for c in version(crd)["additionalPrinterColumns"] if c.get("priority", 0) == 0]
    assert columns == ["Phase", "Writer", "Readers", "ACU", "Age"]
    assert "size(self.metadata.name) <= 40" in rules(open_api(crd))


def test_defaults_enums_and_ranges_reach_the_schema() -> None:
    assert spec_schema("instances.readers").items() >= {"minimum": 0, "maximum": 15, "default": 1}.items()
    assert spec_schema("instances.promotionTiers")["items"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 15,
    }
    acu = spec_schema("instances.serverless.minCapacity")
    assert (acu["type"], acu["minimum"], acu["maximum"]) == ("number", 0, 256)
    assert "double(int(self * 2.0)) == self * 2.0" in rules(
        acu
    )  # 0.5 steps; see cluster.Acu for why not multipleOf
    assert spec_schema("instances.serverless.maxCapacity")["minimum"] == 0.5
    assert spec_schema("backup.retentionDays").items() >= {"minimum": 1, "maximum": 35, "default": 7}.items()
    assert spec_schema("storage.reclaimPolicy")["enum"] == ["Delete", "Retain"]
    assert spec_schema("engine.version")["enum"] == ["15"]
    assert spec_schema("storage.zones.values")["x-kubernetes-list-type"] == "set"
    # Nested objects default to {} so their own defaults apply when the user omits them.
    for name in ("engine", "instances", "maintenance", "postgresql", "tls"):
        assert spec_schema(name)["default"] == {}


def test_cel_rules_for_immutability_and_cross_field_checks() -> None:
    for path in ("engine.version", "storage.storageClassName", "storage.zones", "storage.volumeSize"):
        assert "self == oldSelf" in rules(spec_schema(path)), path
    assert "self.minCapacity <= self.maxCapacity" in rules(spec_schema("instances.serverless"))
    assert "!(has(self.resources) && has(self.serverless))" in rules(spec_schema("instances"))
    assert any("'port' in self" in r for r in rules(spec_schema("postgresql.parameters")))


def test_int_or_string_quantities() -> None:
    cpu = spec_schema("instances.resources.requests.cpu")
    assert cpu == {"x-kubernetes-int-or-string": True}


def test_status_has_topology_and_list_map_conditions() -> None:
    status = open_api(definitions.cluster_crd())["properties"]["status"]["properties"]
    for key in ("phase", "writer", "targetWriter", "term", "timeline", "endpoints", "storage", "conditions"):
        assert key in status
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert "observedGeneration" in status["conditions"]["items"]["properties"]


def test_snapshot_spec_is_immutable() -> None:
    spec = open_api(definitions.snapshot_crd())["properties"]["spec"]
    assert "self == oldSelf" in rules(spec)


# --- the checker itself must catch what is not structural ------------------------------------------


@pytest.mark.parametrize(
    ("bad", "complaint"),
    [
        ({"type": "object", "properties": {"a": {"$ref": "#/x"}}}, "'$ref' is not allowed"),
        ({"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}]}}}, "no type"),
        ({"properties": {}}, "no type"),
        ({"type": "array"}, "array without items"),
        ({"type": "object", "properties": {}, "additionalProperties": {"type": "string"}}, "together"),
        ({"type": "string", "properties": {}}, "non-object"),
        ({"type": "null"}, "not a Kubernetes type"),
        ({"type": "object", "required": ["x"], "properties": {}}, "required 'x'"),
        ({"type": "string", "x-kubernetes-validations": [{"rule": "true"}]}, "without rule or message"),
        ({"type": "string", "title": "T"}, "'title' is not allowed"),
        (
            {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["k"],
                "items": {"type": "object", "properties": {"k": {"type": "string"}}},
            },
            "must be required or defaulted",
        ),
    ],
)
def test_checker_rejects_non_structural(bad: dict[str, Any], complaint: str) -> None:
    found = structural.violations(bad)
    assert any(complaint in v for v in found), found


def test_converter_refuses_unions_it_cannot_express() -> None:
    class Bad(BaseModel):
        value: int | bool

    with pytest.raises(schema.SchemaError, match="value"):
        schema.structural(Bad)


def test_converter_inlines_refs_and_nullables() -> None:
    class Inner(BaseModel):
        """Inner doc."""

        size: int = 3

    class Outer(BaseModel):
        inner: Inner | None = None
        kind: Literal["x"] = "x"

    out = schema.structural(Outer)
    assert structural.violations(out) == []
    assert out["properties"]["inner"]["properties"]["size"] == {"default": 3, "type": "integer"}
    assert out["properties"]["inner"]["description"] == "Inner doc."
    assert "default" not in out["properties"]["inner"]
    assert out["properties"]["kind"]["enum"] == ["x"]
