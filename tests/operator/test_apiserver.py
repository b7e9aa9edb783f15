"""Against a real kube-apiserver: the CRDs install, bad input is refused naming the field, defaults match
the models, immutable fields stay immutable, and the lightkube adapter creates a cluster idempotently.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from aurora_api.v1alpha1.cluster import AuroraCluster, AuroraClusterSpec
from aurora_operator.kube import LightKube
from aurora_operator.reconcile import loop
from aurora_operator.settings import Settings
from lightkube import AsyncClient, KubeConfig

from . import factories
from .apiserver import ApiServer, control_plane

pytestmark = pytest.mark.integration
ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
OPERATOR_BIN = str(pathlib.Path(sys.executable).parent / "quorumdb-operator")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with control_plane(tmp_path_factory.mktemp("apiserver")) as server:
        server.run("apply", "--server-side", "-f", str(ROOT / "crds"))
        server.run("wait", "--for", "condition=established", "--timeout=30s", "crd", "--all")
        server.run("create", "namespace", "db")
        yield server


def test_example_is_accepted_and_defaulted_like_the_models(api: ApiServer) -> None:
    api.run("-n", "db", "apply", "-f", str(EXAMPLES / "aurora-serverless.yaml"))
    stored = json.loads(api.run("-n", "db", "get", "aurora", "analytics", "-o", "json").stdout)["spec"]
    local = AuroraClusterSpec.model_validate(
        yaml.safe_load((EXAMPLES / "aurora-serverless.yaml").read_text())["spec"]
    )
    assert AuroraClusterSpec.model_validate(stored) == local
    # Every default the models fill in, the API server did too (empty lists/maps have no schema default).
    assert without_empty(local.model_dump(by_alias=True, mode="json", exclude_none=True)) == stored


def without_empty(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_empty(v) for k, v in value.items() if v not in ({}, [])}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def test_invalid_manifest_is_refused_naming_each_field(api: ApiServer) -> None:
    done = api.run("-n", "db", "apply", "-f", str(EXAMPLES / "invalid-cluster.yaml"), check=False)
    assert done.returncode != 0
    fields = ["spec.instances.readers", "spec.instances.serverless.minCapacity", "spec.storage.zones.values"]
    fields += ["spec.postgresql.parameters", "minCapacity must not exceed maxCapacity"]
    fields += ["spec.backup.objectStore", "caSecret needs an https:// endpoint"]
    fields += ["tokenLogin needs tls.enabled", "spec.tokenLogin.roles[0].role", "managed by QuorumDB"]
    for field in fields:
        assert field in done.stderr, done.stderr


def test_integral_acu_values_are_accepted(api: ApiServer) -> None:
    """Regression: `multipleOf: 0.5` made the API server reject `maxCapacity: 8`."""
    manifest = yaml.safe_load((EXAMPLES / "aurora-serverless.yaml").read_text())
    manifest["metadata"]["name"] = "integral"
    manifest["spec"]["instances"]["serverless"] = {"minCapacity": 1, "maxCapacity": 8}
    api.run("-n", "db", "apply", "-f", "-", stdin=json.dumps(manifest))


def test_immutable_fields_stay_immutable(api: ApiServer) -> None:
    api.run("-n", "db", "apply", "-f", str(EXAMPLES / "aurora-demo.yaml"))
    patch = {"spec": {"storage": {"storageClassName": "fast", "volumeSize": "2Gi"}}}
    done = api.run(
        "-n", "db", "patch", "aurora", "demo", "--type", "merge", "-p", json.dumps(patch), check=False
    )
    assert "storage.storageClassName is immutable" in done.stderr
    assert "storage.volumeSize is immutable" in done.stderr
    api.run("-n", "db", "scale", "aurora", "demo", "--replicas", "4")
    assert (
        api.run("-n", "db", "get", "aurora", "demo", "-o", "jsonpath={.spec.instances.readers}").stdout == "4"
    )


def test_deletion_protection_policy_refuses_delete(api: ApiServer) -> None:
    helm = shutil.which("helm") or str(pathlib.Path.home() / ".cache/aurora-testbed/tools/helm")
    if not pathlib.Path(helm).exists():
        pytest.skip("helm not found")
    args = ["template", "qdb", str(ROOT / "charts/quorumdb"), "--kube-version", "v1.34.4"]
    args += ["-s", "templates/deletion-protection.yaml"]
    policy = subprocess.run([helm, *args], capture_output=True, text=True, check=True)
    api.run("apply", "-f", "-", stdin=policy.stdout)
    manifest = yaml.safe_load((EXAMPLES / "aurora-demo.yaml").read_text())
    manifest["metadata"]["name"] = "protected"
    manifest["spec"]["deletionProtection"] = True
    api.run("-n", "db", "apply", "-f", "-", stdin=json.dumps(manifest))
    done = api.run("-n", "db", "delete", "aurora", "protected", check=False)
    for _ in range(20):  # the policy takes a moment to be enforced after creation
        if "deletionProtection is true" in done.stderr:
            break
        api.run("-n", "db", "apply", "-f", "-", stdin=json.dumps(manifest))
        done = api.run("-n", "db", "delete", "aurora", "protected", "--wait=false", check=False)
    assert "spec.deletionProtection is true" in done.stderr


async def test_reconcile_through_lightkube_is_idempotent(api: ApiServer) -> None:
    api.run("-n", "db", "apply", "-f", str(EXAMPLES / "aurora-demo.yaml"))
    body = json.loads(api.run("-n", "db", "get", "aurora", "demo", "-o", "json").stdout)
    cluster = AuroraCluster.model_validate(body)
    client = AsyncClient(config=KubeConfig.from_file(api.kubeconfig), field_manager="test")
    kube = LightKube(client, "quorumdb-operator")
    first = await loop.reconcile(kube, Settings(), cluster)
    assert next(c for c in factories.must(first).conditions if c.type == "Reconciled").status == "True", first
    assert "created StatefulSet demo-storage-0" in first.done
    second = await loop.reconcile(kube, Settings(), cluster)
    assert second.done == []
    sets = api.run("-n", "db", "get", "sts", "-l", "quorumdb.io/cluster=demo", "-o", "name").stdout.split()
    assert len(sets) == 3 + 1 + cluster.spec.instances.readers
    owner = json.loads(api.run("-n", "db", "get", "svc", "demo-ro", "-o", "json").stdout)["metadata"]
    assert owner["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    await client.close()


def wait(what: str, predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_operator_process_provisions_scales_and_deletes(api: ApiServer, tmp_path: pathlib.Path) -> None:
    """The real entry point (kopf, peering, finalizer, status, Events) on the real API; GC does the rest."""
    api.run(
        "apply",
        "-f",
        "-",
        stdin="apiVersion: kopf.dev/v1\nkind: ClusterKopfPeering\nmetadata: {name: quorumdb}\n",
    )
    api.run("create", "namespace", "op")
    log = (tmp_path / "operator.log").open("w")
    env = os.environ | {"KUBECONFIG": str(api.kubeconfig), "QUORUMDB_OPERATOR_IMAGE": "quorumdb:it"}
    operator = subprocess.Popen([OPERATOR_BIN], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        api.run("-n", "op", "apply", "-f", str(EXAMPLES / "aurora-demo.yaml"))

        def status() -> dict[str, Any]:
            found: dict[str, Any] = json.loads(
                api.run("-n", "op", "get", "aurora", "demo", "-o", "json").stdout
            )
            result: dict[str, Any] = found.get("status", {})
            return result

        wait("status written", lambda: status().get("writer") == "demo-instance-0", 60)
        st = status()
        assert (
            st["phase"] == "Provisioning"
            and st["term"] == 1
            and st["endpoints"]["reader"] == "demo-ro.op.svc:5432"
        )
        zones = next(c for c in st["conditions"] if c["type"] == "ZonesAvailable")
        assert zones["reason"] == "NoNodesInZone"  # this control plane has no nodes at all

        def reasons() -> set[str]:
            return set(
                api.run("-n", "op", "get", "events", "-o", "jsonpath={.items[*].reason}").stdout.split()
            )

        # kopf posts Events from a queue, after the status patch: wait rather than assert at once.
        wait("Events posted", lambda: {"SecretCreated", "Applied", "NoNodesInZone"} <= reasons(), 30)

        def instance_sets() -> list[str]:
            out = api.run("-n", "op", "get", "sts", "-l", "quorumdb.io/component=instance", "-o", "name")
            return out.stdout.split()

        wait("three instances", lambda: len(instance_sets()) == 3)
        api.run(
            "-n",
            "op",
            "patch",
            "aurora",
            "demo",
            "--type",
            "merge",
            "-p",
            '{"spec":{"instances":{"readers":0}}}',
        )
        wait("scaled to the writer alone", lambda: instance_sets() == ["statefulset.apps/demo-instance-0"])

        api.run("-n", "op", "delete", "aurora", "demo", "--timeout=60s")
        left = "sts,svc,pdb,secret,cm,sa,role,rolebinding"
        wait(
            "owned objects collected",
            lambda: api.run("-n", "op", "get", left, "-o", "name").stdout.strip() == "",
            60,
        )
    finally:
        operator.terminate()
        operator.wait(timeout=20)
        log.close()
    text = (tmp_path / "operator.log").read_text()
    assert "Traceback" not in text, text[-3000:]
