"""Import layering: the API contract and the pure parts of the operator never import I/O libraries.

A lightweight stand-in for import-linter: parse each module's imports and compare against what its layer
forbids (docs: aurora_operator/__init__.py).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

OPERATOR = pathlib.Path(__file__).resolve().parents[2] / "operator"
IO = {"kopf", "lightkube", "httpx", "aiohttp", "psycopg", "boto3", "asyncio", "subprocess", "socket"}
PURE_RECONCILE = ("plan", "report", "checks", "conditions", "observed")

LAYERS = [
    (
        "aurora_api",
        sorted((OPERATOR / "aurora_api").rglob("*.py")),
        IO | {"aurora_operator", "aurora_instance"},
    ),
    ("render", sorted((OPERATOR / "aurora_operator/render").glob("*.py")), IO),
    (
        "pure reconcile",
        [OPERATOR / f"aurora_operator/reconcile/{m}.py" for m in PURE_RECONCILE],
        IO | {"aurora_operator.kube"},
    ),
]


def imported(path: pathlib.Path) -> set[str]:
    found = set()
    package = ".".join(path.relative_to(OPERATOR).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
    return found


@pytest.mark.parametrize(("layer", "files", "forbidden"), LAYERS, ids=[layer[0] for layer in LAYERS])
def test_layer_imports(layer: str, files: list[pathlib.Path], forbidden: set[str]) -> None:
    assert files
    for path in files:
        bad = {name for name in imported(path) for f in forbidden if name == f or name.startswith(f + ".")}
        assert not bad, f"{path.relative_to(OPERATOR)} ({layer}) imports {sorted(bad)}"
