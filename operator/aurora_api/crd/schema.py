"""Convert a pydantic JSON Schema into a structural Kubernetes schema.

Why a hand-written converter: pydantic's output is valid JSON Schema but not structural (``$ref``, nullable
``anyOf``, ``const``, ``propertyNames``, ``additionalProperties: false``). This module knows the handful of
shapes our models produce and raises on anything else, so a new field type never slips into a CRD unchecked.
It must stay free of knowledge about particular fields: per-field extras come from ``json_schema_extra``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]

DROPPED = frozenset({"title"})
NULL: Schema = {"type": "null"}


class SchemaError(ValueError):
    """The model uses a JSON Schema shape that has no structural equivalent here."""


def structural(model: type[BaseModel]) -> Schema:
    """The structural schema of ``model`` (validation mode, camelCase aliases)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Schema] = raw.pop("$defs", {})
    return _convert(raw, defs, path=model.__name__)


def _convert(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    node = dict(node)
    if "$ref" in node:
        name = node.pop("$ref").rsplit("/", 1)[-1]
        if name not in defs:
            raise SchemaError(f"{path}: unresolved $ref {name}")
        # Field-level keys (description, default, CEL rules) win over the referenced model's.
        return _merge(_convert(defs[name], defs, path), _convert(node, defs, path) if node else {})
    if "anyOf" in node:
        return _any_of(node, defs, path)
    out: Schema = {}
    for key, value in node.items():
        if key in DROPPED:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out["properties"] = {k: _convert(v, defs, f"{path}.{k}") for k, v in value.items()}
        elif key == "items":
            out["items"] = _convert(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out["additionalProperties"] = _convert(value, defs, f"{path}{{}}")
            # `false` is pydantic's extra="forbid"; the API server prunes unknown fields anyway.
        elif key == "propertyNames":
            continue  # handled below: enumerated keys become explicit properties
        else:
            out[key] = value
    keys = node.get("propertyNames", {}).get("enum")
    if keys is not None:
        value_schema = out.pop("additionalProperties", {})
        out["properties"] = {k: dict(value_schema) for k in keys}
    if out.get("default", 0) is None:
        del out["default"]
    return out


def _any_of(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    options = [o for o in node["anyOf"] if o != NULL]
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    siblings = _convert(rest, defs, path) if rest else {}
    if len(options) == 1:
        return _merge(_convert(options[0], defs, path), siblings)
    types = {o.get("type") for o in options}
    if types == {"integer", "string"}:
        return _merge({"x-kubernetes-int-or-string": True}, siblings)
    raise SchemaError(f"{path}: anyOf of {sorted(map(str, types))} has no structural form")


def _merge(base: Schema, override: Schema) -> Schema:
    merged = dict(base)
    for key, value in override.items():
        if key == "x-kubernetes-validations" and key in merged:
            merged[key] = [*merged[key], *value]
        else:
            merged[key] = value
    return merged
