"""Fixtures for instance-manager integration tests (real PostgreSQL and storage nodes, as ``postgres``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.instance_integration import harness


@pytest.fixture
def bed_root(request: pytest.FixtureRequest) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="quorumdb-instance-"))
    os.chmod(root, 0o755)
    yield root
    failed = getattr(request.node, "rep_call", None)
    if (failed is not None and failed.failed) or os.environ.get("QUORUMDB_KEEP_TEST_DIRS"):
        print(f"kept test directory {root}")
        return
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def bed(bed_root: Path) -> Iterator[harness.Bed]:
    with harness.bed(bed_root) as b:
        yield b


@pytest.fixture
def solo(bed_root: Path) -> Iterator[harness.Bed]:
    """A writer and six storage nodes, no readers."""
    with harness.bed(bed_root, readers=0) as b:
        yield b


@pytest.fixture
def tls_pair(bed_root: Path) -> Iterator[harness.Bed]:
    """A writer, one reader and six storage nodes, every control endpoint over HTTPS."""
    with harness.bed(bed_root, readers=1, control_tls=True) as b:
        yield b


@pytest.fixture
def pair(bed_root: Path) -> Iterator[harness.Bed]:
    """A writer, one reader and six storage nodes."""
    with harness.bed(bed_root, readers=1) as b:
        yield b


@pytest.fixture(scope="module")
def shared_bed() -> Iterator[harness.Bed]:
    """One cluster for a module's read-only scenarios (saves a bootstrap per test)."""
    root = Path(tempfile.mkdtemp(prefix="quorumdb-instance-"))
    os.chmod(root, 0o755)
    with harness.bed(root) as b:
        yield b
    if not os.environ.get("QUORUMDB_KEEP_TEST_DIRS"):
        shutil.rmtree(root, ignore_errors=True)
