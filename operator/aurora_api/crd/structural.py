"""An independent check that a schema is structural in the Kubernetes sense.

Why separate from the converter: a converter bug should be caught by code that does not share its
assumptions. The rules are a subset of the apiextensions ``structural`` validation: every node has a type
(or is int-or-string / preserve-unknown), no ``$ref``/``anyOf`` outside int-or-string, properties and
additionalProperties never together, only keys the API server understands, CEL rules with messages,
list-map keys required.
"""

from __future__ import annotations

from typing import Any

ALLOWED = frozenset(
    {
        "type", "description", "properties", "required", "items", "enum", "default", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "minItems",
        "maxItems", "minProperties", "maxProperties", "format", "nullable", "additionalProperties",
        "x-kubernetes-validations", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
        "x-kubernetes-embedded-resource",
    }
)  # fmt: skip
TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean"})


def violations(schema: dict[str, Any], path: str = "") -> list[str]:
    """Every reason ``schema`` is not structural; empty when it is."""
    found: list[str] = []
    _walk(schema, path or "<root>", found)
    return found


def _walk(node: dict[str, Any], path: str, found: list[str]) -> None:
    for key in node:
        if key not in ALLOWED:
            found.append(f"{path}: key {key!r} is not allowed")
    typeless = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    if "type" not in node and not typeless:
        found.append(f"{path}: no type")
    if "type" in node and node["type"] not in TYPES:
        found.append(f"{path}: type {node['type']!r} is not a Kubernetes type")
    if "properties" in node and "additionalProperties" in node:
        found.append(f"{path}: properties and additionalProperties together")
    if ("properties" in node or "additionalProperties" in node) and node.get("type") != "object":
        found.append(f"{path}: properties on a non-object")
    if node.get("type") == "array" and "items" not in node:
        found.append(f"{path}: array without items")
    for name in node.get("required", []):
        if name not in node.get("properties", {}):
            found.append(f"{path}: required {name!r} is not a property")
    for rule in node.get("x-kubernetes-validations", []):
        if not rule.get("rule") or not (rule.get("message") or rule.get("messageExpression")):
            found.append(f"{path}: CEL rule without rule or message: {rule}")
    _check_list_map(node, path, found)
    for name, child in node.get("properties", {}).items():
        _walk(child, f"{path}.{name}", found)
    if isinstance(node.get("additionalProperties"), dict):
        _walk(node["additionalProperties"], f"{path}{{}}", found)
    if isinstance(node.get("items"), dict):
        _walk(node["items"], f"{path}[]", found)


def _check_list_map(node: dict[str, Any], path: str, found: list[str]) -> None:
    if node.get("x-kubernetes-list-type") != "map":
        return
    items = node.get("items", {})
    for key in node.get("x-kubernetes-list-map-keys", []) or [None]:
        props = items.get("properties", {})
        if key is None or key not in props:
            found.append(f"{path}: list-map key {key!r} is not an item property")
        elif key not in items.get("required", []) and "default" not in props[key]:
            found.append(f"{path}: list-map key {key!r} must be required or defaulted")
