"""Markdown field reference of the CRDs, generated into docs/api.md between markers.

Why generated: the reference must say exactly what the API server enforces (types, defaults, ranges, CEL
messages); writing it by hand would drift from the models the way hand-written CRDs do.
"""

from __future__ import annotations

import json
from typing import Any

from . import definitions

BEGIN = "<!-- BEGIN GENERATED: field reference (python -m aurora_api.gen) -->"
END = "<!-- END GENERATED -->"


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    kind = str(node.get("type", "object"))
    if kind == "array":
        return f"[]{_type(node.get('items', {}))}"
    if kind == "object" and "additionalProperties" in node:
        return f"map[string]{_type(node['additionalProperties'])}"
    return kind


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    if "enum" in node:
        parts.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    labels = {"minimum": "≥", "maximum": "≤", "multipleOf": "step", "minItems": "min items",
              "maxItems": "max items", "maxLength": "max length", "pattern": "pattern"}  # fmt: skip
    for key, label in labels.items():
        if key in node:
            value = f"`{node[key]}`" if key == "pattern" else node[key]
            parts.append(f"{label} {value}")
    for rule in node.get("x-kubernetes-validations", []):
        parts.append(rule["message"])
    return "; ".join(parts).replace("|", "\\|")


def _rows(node: dict[str, Any], path: str, required: bool, out: list[str]) -> None:
    if path:
        default = "required" if required else ""
        if "default" in node:
            default = f"`{json.dumps(node['default'])}`"
        description = node.get("description", "").replace("\n", " ").replace("|", "\\|")
        out.append(f"| `{path}` | {_type(node)} | {default} | {_constraints(node)} | {description} |")
    children = node.get("properties", {})
    if node.get("type") == "array":
        children = node.get("items", {}).get("properties", {})
        path += "[]"
    needed = set(node.get("required", []) or node.get("items", {}).get("required", []))
    for name, child in children.items():
        _rows(child, f"{path}.{name}" if path else name, name in needed, out)


def table(crd: dict[str, Any], section: str) -> str:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][section]
    out = ["| Field | Type | Default | Validation | Description |", "|---|---|---|---|---|"]
    _rows(schema, "", False, out)
    return "\n".join(out)


def render() -> str:
    cluster, snapshot = definitions.cluster_crd(), definitions.snapshot_crd()
    parts = [
        BEGIN,
        "### AuroraCluster `.spec`",
        table(cluster, "spec"),
        "### AuroraCluster `.status`",
        table(cluster, "status"),
        "### AuroraSnapshot `.spec`",
        table(snapshot, "spec"),
        "### AuroraSnapshot `.status`",
        table(snapshot, "status"),
        END,
    ]
    return "\n\n".join(parts)


def splice(document: str) -> str:
    """``document`` with the generated block replaced (appended when the markers are missing)."""
    if BEGIN in document and END in document:
        head, rest = document.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        return head + render() + tail
    return document.rstrip("\n") + "\n\n" + render() + "\n"
