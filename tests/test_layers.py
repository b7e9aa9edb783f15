"""Import layering of both trees: pure cores never import I/O, and the three packages stay independent.

A lightweight stand-in for import-linter: parse each module's imports and compare them against what its
layer forbids. Operator layers: aurora_operator/__init__.py. The instance manager's decision core
(``decide``, ``snapshot``) and the storage engine's sans-IO modules (quorum math, LSN arithmetic, fencing,
repair and retention planning) must stay pure; ``aurora_storage`` never imports the instance manager, the
instance manager and the storage engine never import the operator, and the operator imports neither
(they meet only in ``aurora_api``); the resume proxy and the Data API import only ``aurora_api``.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
OPERATOR = ROOT / "operator"
ENGINE = ROOT / "storage-engine"
IO = {"kopf", "lightkube", "httpx", "aiohttp", "psycopg", "boto3", "asyncio", "subprocess", "socket"}
FILESYSTEM = {"os", "pathlib", "shutil", "time"}
PURE_RECONCILE = (
    "plan", "report", "checks", "conditions", "observed", "failover", "stranded", "backups", "restore",
    "snapshots", "autoscale", "pause",
)  # fmt: skip
PURE_STORAGE = (
    "quorum",
    "lsn",
    "fencing",
    "repair_plan",
    "repair_attempts",
    "history",
    "retention",
    "archive_layout",
    "walfile",
)
PURE_HELPERS = ("lightkube.utils.quantity", "psycopg.types.json")
"""Pure code inside an I/O library (quantity parsing, the JSON parameter wrapper)."""
INSTANCE_EFFECTS = {f"aurora_instance.{m}" for m in ("manager", "actions", "promotion", "postgres", "files")}

LAYERS = [
    ("aurora_api", OPERATOR, sorted((OPERATOR / "aurora_api").rglob("*.py")),
     IO | {"aurora_operator", "aurora_instance", "aurora_storage"}),
    ("render", OPERATOR, sorted((OPERATOR / "aurora_operator/render").glob("*.py")), IO),
    ("pure reconcile", OPERATOR, [OPERATOR / f"aurora_operator/reconcile/{m}.py" for m in PURE_RECONCILE],
     IO | {"aurora_operator.kube"}),
    ("operator", OPERATOR, sorted((OPERATOR / "aurora_operator").rglob("*.py")),
     {"aurora_instance", "aurora_storage"}),
    ("instance decision core", ENGINE, [ENGINE / f"aurora_instance/{m}.py" for m in ("decide", "snapshot")],
     IO | FILESYSTEM | INSTANCE_EFFECTS),
    ("instance manager", ENGINE, sorted((ENGINE / "aurora_instance").rglob("*.py")), {"aurora_operator"}),
    ("pure storage", ENGINE, [ENGINE / f"aurora_storage/{m}.py" for m in PURE_STORAGE],
     IO | FILESYSTEM | {"aurora_instance", "aurora_operator"}),
    ("storage engine", ENGINE, sorted((ENGINE / "aurora_storage").rglob("*.py")),
     {"aurora_instance", "aurora_operator"}),
    ("proxy directory", ENGINE, [ENGINE / "aurora_proxy/directory.py"], IO | FILESYSTEM),
    ("data api wire format", ENGINE, [ENGINE / "aurora_data_api/wire.py"], IO | FILESYSTEM),
    ("data api", ENGINE, sorted((ENGINE / "aurora_data_api").rglob("*.py")),
     {"aurora_instance", "aurora_storage", "aurora_operator", "aurora_proxy"}),
    ("proxy", ENGINE, sorted((ENGINE / "aurora_proxy").rglob("*.py")),
     {"aurora_instance", "aurora_storage", "aurora_operator"}),
]  # fmt: skip


def imported(root: pathlib.Path, path: pathlib.Path) -> set[str]:
    found = set()
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


@pytest.mark.parametrize(("layer", "root", "files", "forbidden"), LAYERS, ids=[layer[0] for layer in LAYERS])
def test_layer_imports(
    layer: str, root: pathlib.Path, files: list[pathlib.Path], forbidden: set[str]
) -> None:
    assert files
    for path in files:
        names = imported(root, path)
        bad = {
            name
            for name in names
            for f in forbidden
            if (name == f or name.startswith(f + ".")) and not name.startswith(PURE_HELPERS)
        }
        assert not bad, f"{path.relative_to(ROOT)} ({layer}) imports {sorted(bad)}"
