"""Fixtures for the kind-based end-to-end suite: the cluster (must exist: `make cluster`) and a fresh
namespace per test that is deleted afterwards. In CI (env CI set) a missing cluster fails the run;
locally it skips with the command that creates one."""

from __future__ import annotations

import datetime
import os
import shutil
import uuid
from collections.abc import Iterator

import aurora
import pytest
import secret_scan
from kube import Kubectl, KubectlError, default_kubeconfig


@pytest.fixture(scope="session")
def kubectl() -> Kubectl:
    k = Kubectl(default_kubeconfig())
    problem = None
    if shutil.which("kubectl") is None:
        problem = "kubectl not on PATH (run `make cluster`, which builds it)"
    else:
        try:
            k.run("get", "--raw", "/readyz", timeout=20)
        except (KubectlError, OSError) as err:
            problem = f"no reachable test-bed cluster ({err}); run `make cluster`"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return k


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[Kubectl]:
    """A fresh namespace; afterwards, before it is deleted, no secret of it shows in a log, an Event or a
    status (``secret_scan``)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    kubectl.run("create", "namespace", name)
    ns = kubectl.in_namespace(name)
    found: list[str] = []
    try:
        yield ns
        secrets = secret_scan.needles(ns.get_json("secrets")["items"])
        found = secret_scan.leaks(
            secrets, secret_scan.collect(ns, kubectl.in_namespace(OPERATOR_NAMESPACE), started)
        )
    finally:
        kubectl.run("delete", "namespace", name, "--wait=false", check=False)
    assert not found, "secrets leaked:\n" + "\n".join(found)


OPERATOR_NAMESPACE = "quorumdb-system"


@pytest.fixture(scope="session")
def operator_release(kubectl: Kubectl) -> str:
    """The operator installed with Helm, as a user would (`make image` must have loaded the image)."""
    aurora.install_operator(kubectl)
    return "quorumdb"


@pytest.fixture
def operator(kubectl: Kubectl, operator_release: str) -> Iterator[None]:
    """Per test: the operator is running; afterwards its log for the test's duration has no traceback."""
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    yield
    ops = kubectl.in_namespace(OPERATOR_NAMESPACE)
    log = ops.run("logs", "-l", "app.kubernetes.io/name=quorumdb-operator", "--since-time", started,
                  "--tail=-1", "--all-containers", "--prefix", check=False)  # fmt: skip
    assert "Traceback" not in log, f"operator log shows a traceback during the test:\n{log[-6000:]}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The test bed's smoke test first: it checks the bed as built (zones, volumes, DNS, NetworkPolicy), and
    later scenarios stop and delete kind nodes (a re-joined node's NetworkPolicy enforcement was seen to
    refuse an allowed client afterwards)."""
    items.sort(key=lambda item: "test_testbed_smoke" not in item.nodeid)
