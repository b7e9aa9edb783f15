"""Renderers: golden files for whole manifests, plus asserts on the fields the design depends on.

Regenerate goldens after an intended change with ``QUORUMDB_UPDATE_GOLDEN=1 pytest tests/operator``; the diff
is then the review.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest
import yaml
from aurora_api import contract
from aurora_api.contract import Env, EnvDataApi, EnvInstance, EnvStorage
from aurora_api.v1alpha1.cluster import AuroraCluster
from aurora_operator.render import (
    accounts,
    config,
    data_api,
    desired,
    disruption,
    instances,
    names,
    proxy,
    services,
    storage,
)  # fmt: skip
from aurora_operator.settings import Settings
from lightkube import codecs

from . import factories

GOLDEN = pathlib.Path(__file__).parent / "golden"
SETTINGS = Settings(image="quorumdb:test")

FULL = {
    "engine": {"image": "quorumdb:custom"},
    "instances": {
        "readers": 2,
        "promotionTiers": [0, 0, 2],
        "serverless": {"minCapacity": 0.5, "maxCapacity": 4},
    },
    "storage": {"volumeSize": "2Gi", "storageClassName": "fast", "reclaimPolicy": "Retain"},
    "backup": {
        "objectStore": {
            "endpoint": "http://minio.s3:9000",
            "bucket": "backups",
            "credentialsSecret": {"name": "s3"},
        }
    },
    "postgresql": {
        "parameters": {"work_mem": "8MB", "log_line_prefix": "it's %m", "shared_buffers": "128MB"}
    },
}


def everything(c: AuroraCluster) -> list[dict[str, Any]]:
    manifests = [accounts.secret(c, a, "secret-pw") for a in names.ACCOUNTS] + desired.shared(c, SETTINGS)
    for ordinal in range(c.spec.instances.readers + 1):
        manifests += desired.instance(c, SETTINGS, ordinal, writer=0)
    return manifests


@pytest.mark.parametrize(("scenario", "spec"), [("minimal", {}), ("full", FULL)])
def test_golden(scenario: str, spec: dict[str, Any]) -> None:
    text = yaml.safe_dump_all(everything(factories.cluster(spec)), sort_keys=False, width=120)
    path = GOLDEN / f"cluster-{scenario}.yaml"
    if os.environ.get("QUORUMDB_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text, f"{path.name} differs; if intended, regenerate (see module docstring)"


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_storage_sets_pin_two_nodes_to_each_zone() -> None:
    c = factories.cluster()
    sets = storage.all_sets(c, SETTINGS)
    assert [s["metadata"]["name"] for s in sets] == ["demo-storage-0", "demo-storage-1", "demo-storage-2"]
    for index, sts in enumerate(sets):
        spec = sts["spec"]
        assert spec["replicas"] == 2
        assert spec["ordinals"] == {"start": 2 * index}
        assert spec["updateStrategy"] == {"type": "OnDelete"}
        assert spec["serviceName"] == "demo-storage"
        term = spec["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        expression = term["nodeSelectorTerms"][0]["matchExpressions"][0]
        assert expression == {
            "key": "topology.kubernetes.io/zone",
            "operator": "In",
            "values": [factories.ZONES[index]],
        }
        claim = spec["volumeClaimTemplates"][0]
        assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
        assert "storageClassName" not in claim["spec"]
        assert spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"


def test_storage_nodes_env_lists_six_stable_addresses_in_ordinal_order() -> None:
    c = factories.cluster()
    container = storage.stateful_set(c, SETTINGS, 1)["spec"]["template"]["spec"]["containers"][0]
    env = env_of(container)
    nodes = env[Env.STORAGE_NODES].split(",")
    assert nodes == [f"demo-storage-{i // 2}-{i}.demo-storage.db.svc.cluster.local:7000" for i in range(6)]
    assert env[EnvStorage.ZONE] == "zone-b"
    assert env[Env.POD_NAME] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env[Env.WRITER_ENDPOINT] == "demo.db.svc:5432"
    assert container["command"] == ["quorumdb-storage-node"]
    probe = {"path": contract.StoragePaths.READINESS, "port": "http", "scheme": "HTTPS"}
    assert container["readinessProbe"]["httpGet"] == probe
    assert names.storage_pods(c)[3] == "demo-storage-1-3"
    assert env[EnvStorage.WRITER_CONNINFO] == "host=demo.db.svc port=5432 user=replicator dbname=postgres"
    # the password is in no variable: the node builds a password file from its mounted replication Secret.
    assert EnvStorage.LIBPQ_PASSWORD not in env
    assert not any("secretKeyRef" in (e.get("valueFrom") or {}) for e in container["env"])


def test_control_endpoints_serve_the_control_certificate_and_say_so_on_their_pods() -> None:
    c = factories.cluster()
    pods = [
        storage.stateful_set(c, SETTINGS, 0)["spec"]["template"],
        instances.stateful_set(c, SETTINGS, 0, contract.ROLE_WRITER, term=1)["spec"]["template"],
    ]
    for template in pods:
        assert template["metadata"]["annotations"][contract.ANNOTATION_CONTROL_SCHEME] == "https"
        (volume,) = [v for v in template["spec"]["volumes"] if v["name"] == "control-tls"]
        assert volume["secret"]["secretName"] == "demo-control-tls" and "items" not in volume["secret"]
        container = template["spec"]["containers"][0]
        assert env_of(container)[Env.CONTROL_TLS_DIR] == "/etc/quorumdb/control-tls"
        assert container["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    # the proxy calls them and serves its own status over HTTPS too,
    proxy_pod = proxy.deployment(c, SETTINGS, [0])["spec"]["template"]["spec"]
    assert [v["secret"]["secretName"] for v in proxy_pod["volumes"] if v["name"] == "control-tls"] == [
        "demo-control-tls"
    ]
    assert proxy_pod["containers"][0]["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    # and without TLS, none of it.
    off = factories.cluster({"tls": {"enabled": False}})
    plain = storage.stateful_set(off, SETTINGS, 0)["spec"]["template"]
    assert "annotations" not in plain["metadata"]
    assert Env.CONTROL_TLS_DIR not in env_of(plain["spec"]["containers"][0])


def test_storage_nodes_get_only_the_ca_of_the_tls_secret_to_check_the_writer_by() -> None:
    pod = storage.stateful_set(factories.cluster(), SETTINGS, 0)["spec"]["template"]["spec"]
    (tls,) = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert tls["secret"]["secretName"] == "demo-tls" and tls["secret"]["optional"] is True
    assert tls["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]  # never the server's key
    assert env_of(pod["containers"][0])[EnvStorage.WRITER_CA_FILE] == "/etc/quorumdb/tls/ca.crt"
    plain_cluster = factories.cluster({"tls": {"enabled": False}})
    plain = storage.stateful_set(plain_cluster, SETTINGS, 0)["spec"]["template"]
    assert "tls" not in [v["name"] for v in plain["spec"]["volumes"]]
    assert EnvStorage.WRITER_CA_FILE not in env_of(plain["spec"]["containers"][0])


def test_storage_options_flow_into_claims() -> None:
    c = factories.cluster(FULL)
    sts = storage.stateful_set(c, SETTINGS, 0)
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "fast"
    assert claim["resources"]["requests"]["storage"] == "2Gi"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == "quorumdb:custom"


def test_instance_set_carries_role_identity_and_contract() -> None:
    c = factories.cluster({"instances": {"promotionTiers": [3, 0]}})
    sts = instances.stateful_set(c, SETTINGS, 1, contract.ROLE_READER, term=4)
    spec = sts["spec"]
    pod = spec["template"]
    container = pod["spec"]["containers"][0]
    env = env_of(container)
    assert sts["metadata"]["name"] == "demo-instance-1"
    assert spec["replicas"] == 1
    assert spec["updateStrategy"] == {"type": "OnDelete"}
    assert contract.LABEL_ROLE not in pod["metadata"]["labels"]  # set on the pod by the operator
    assert pod["metadata"]["labels"][contract.LABEL_INSTANCE] == "demo-instance-1"
    assert env[EnvInstance.ROLE] == "reader"
    assert env[EnvInstance.TERM] == "4"
    assert env[EnvInstance.INSTANCE_NAME] == "demo-instance-1"
    assert env[EnvInstance.PROMOTION_TIER] == "0"
    assert env[EnvInstance.CONFIG_DIR] == contract.PATH_CONFIG_DIR
    assert container["image"] == "quorumdb:test"
    assert container["readinessProbe"]["httpGet"]["path"] == contract.InstancePaths.READINESS
    assert {"name": "http", "containerPort": contract.INSTANCE_HTTP_PORT} in container["ports"]
    spread = pod["spec"]["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["whenUnsatisfiable"] == "DoNotSchedule"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert "data" not in volumes  # PGDATA is on a claim by default (below)
    paths = [i["path"] for s in volumes["secrets"]["projected"]["sources"] for i in s["secret"]["items"]]
    assert "replication/password" in paths and "app/dbname" in paths


def test_instance_data_is_on_a_claim_by_default_and_on_an_empty_dir_by_choice() -> None:
    c = factories.cluster({"instances": {"volumeSize": "5Gi"}})
    spec = instances.stateful_set(c, SETTINGS, 0, contract.ROLE_WRITER, term=1)["spec"]
    assert spec["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert all(v["name"] != "data" for v in spec["template"]["spec"]["volumes"])
    c = factories.cluster({"instances": {"dataVolume": "EmptyDir", "volumeSize": "3Gi"}})
    spec = instances.stateful_set(c, SETTINGS, 0, contract.ROLE_WRITER, term=1)["spec"]
    assert "volumeClaimTemplates" not in spec
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {"sizeLimit": "3Gi"}}


def test_serverless_pods_start_at_min_capacity_and_resize_without_restart() -> None:
    c = factories.cluster(FULL)
    assert instances.resources(c.spec.instances) == {
        "requests": {"cpu": "125m", "memory": "1024Mi"},
        "limits": {"cpu": "250m", "memory": "1024Mi"},
    }
    container = instances.stateful_set(c, SETTINGS, 0, "writer", 1)["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert {p["restartPolicy"] for p in container["resizePolicy"]} == {"NotRequired"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[contract.EnvInstance.SERVERLESS] == "true"
    # Restart-only settings sized for the range, the user's win.
    assert "max_connections = '500'" in env[contract.EnvInstance.STATIC_PARAMETERS]
    assert "shared_buffers = '128MB'" in env[contract.EnvInstance.STATIC_PARAMETERS]
    provisioned = factories.cluster({"instances": {"resources": {"requests": {"cpu": 1, "memory": "1Gi"}}}})
    assert instances.resources(provisioned.spec.instances) == {"requests": {"cpu": 1, "memory": "1Gi"}}


def test_services_select_by_role_and_instance() -> None:
    c = factories.cluster()
    writer, readers, one = services.writer(c), services.readers(c), services.instance(c, 2)
    assert writer["metadata"]["name"] == "demo"
    assert writer["spec"]["selector"][contract.LABEL_ROLE] == "writer"
    assert readers["metadata"]["name"] == "demo-ro"
    assert readers["spec"]["selector"][contract.LABEL_ROLE] == "reader"
    assert one["spec"]["selector"] == {
        contract.LABEL_CLUSTER: "demo",
        contract.LABEL_COMPONENT: "instance",
        contract.LABEL_INSTANCE: "demo-instance-2",
    }
    assert one["spec"]["publishNotReadyAddresses"] is True  # storage nodes reach a not-yet-ready writer
    assert writer["spec"]["publishNotReadyAddresses"] is True  # the label is the switch (failover speed)
    assert "publishNotReadyAddresses" not in readers["spec"]  # readers serve only within their lag bound
    headless = storage.headless_service(factories.cluster())
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True


def test_a_pausing_cluster_has_a_proxy_and_its_endpoints_lead_to_it_only_while_paused() -> None:
    spec = {"instances": {"readers": 1, "serverless": {"minCapacity": 0, "secondsUntilAutoPause": 60}}}
    c = factories.cluster(spec)
    assert proxy.wanted(c) and not proxy.wanted(factories.cluster())
    deployment = proxy.deployment(c, Settings(), (0, 1))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["quorumdb-proxy"]
    instances_env = {"name": contract.EnvProxy.INSTANCES, "value": "demo-instance-0,demo-instance-1"}
    assert container["env"][0] == instances_env
    projected = deployment["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
    assert {s["secret"]["name"] for s in projected} == {"demo-control"}  # the tokens, no database password
    assert services.writer(c)["spec"]["selector"][contract.LABEL_ROLE] == "writer"
    paused = factories.cluster(spec, {"pause": {"state": "Paused", "since": "2026-12-01T09:00:00Z"}})
    to_proxy = {contract.LABEL_CLUSTER: "demo", contract.LABEL_COMPONENT: contract.COMPONENT_PROXY}
    assert services.writer(paused)["spec"]["selector"] == to_proxy
    readers = services.readers(paused)["spec"]
    assert readers["selector"] == to_proxy and readers["ports"][0]["targetPort"] == "readers"


def test_every_object_is_owned_by_the_cluster() -> None:
    for manifest in everything(factories.cluster(FULL)):
        owner = manifest["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "AuroraCluster",
            "demo",
            "uid-1",
            True,
        )
        assert manifest["metadata"]["labels"][contract.LABEL_CLUSTER] == "demo"


def test_disruption_budgets_keep_quorum_margin() -> None:
    c = factories.cluster()
    assert disruption.storage(c)["spec"]["maxUnavailable"] == 1
    assert disruption.writer(c)["spec"]["minAvailable"] == 1
    assert disruption.readers(c)["spec"]["maxUnavailable"] == 1


def test_secrets_and_config() -> None:
    c = factories.cluster(FULL)
    app = accounts.secret(c, "app", "pw")
    assert app["stringData"]["uri"] == "postgresql://app:pw@demo.db.svc:5432/app"
    assert accounts.secret(c, "replication", "x")["stringData"]["username"] == "replicator"
    conf = config.postgresql_conf(c)
    assert "log_line_prefix = 'it''s %m'\n" in conf and "work_mem = '8MB'\n" in conf
    role = accounts.role(c)
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs <= {"get", "list", "watch", "create", "patch"}


def test_backup_credentials_are_optional_mounted_files_never_environment_values() -> None:
    c = factories.cluster(FULL)
    pod = storage.stateful_set(c, SETTINGS, 0)["spec"]["template"]["spec"]
    env = env_of(pod["containers"][0])
    assert Env.S3_ACCESS_KEY_ID not in env and Env.S3_SECRET_ACCESS_KEY not in env
    assert env[Env.S3_SECRET_ACCESS_KEY + "_FILE"] == "/etc/quorumdb/s3-secrets/own/secret-access-key"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "s3-secrets"]
    assert volume["projected"]["sources"][0]["secret"] == {
        "name": "s3", "optional": True,
        "items": [{"key": "accessKeyId", "path": "own/access-key-id"},
                  {"key": "secretAccessKey", "path": "own/secret-access-key"}],
    }  # fmt: skip
    assert env[Env.S3_PREFIX] == "db/demo"
    assert env[Env.S3_BUCKET] == "backups"


def test_a_private_store_ca_is_mounted_where_the_clients_read_it() -> None:
    store = {"endpoint": "https://s3.internal:9000", "bucket": "backups", "credentialsSecret": {"name": "s3"},
             "caSecret": {"name": "store-ca", "key": "bundle.pem"}}  # fmt: skip
    c = factories.cluster({"backup": {"objectStore": store}})
    for pod in (
        storage.stateful_set(c, SETTINGS, 0)["spec"]["template"]["spec"],
        instances.stateful_set(c, SETTINGS, 0, "writer", 1)["spec"]["template"]["spec"],
    ):
        container = pod["containers"][0]
        assert env_of(container)[Env.S3_CA_FILE] == f"{contract.PATH_S3_CA_DIR}/ca.crt"
        assert {"name": "s3-ca", "mountPath": contract.PATH_S3_CA_DIR, "readOnly": True} in container[
            "volumeMounts"
        ]
        volume = next(v for v in pod["volumes"] if v["name"] == "s3-ca")
        source = {"name": "store-ca", "items": [{"key": "bundle.pem", "path": "ca.crt"}], "optional": True}
        assert volume["projected"]["sources"] == [{"secret": source}]
    plain = factories.cluster(FULL)
    pod = storage.stateful_set(plain, SETTINGS, 0)["spec"]["template"]["spec"]
    assert Env.S3_CA_FILE not in env_of(pod["containers"][0])
    assert all(v["name"] != "s3-ca" for v in pod["volumes"])


def test_server_side_encryption_reaches_every_pod_that_uploads() -> None:
    store = {"endpoint": "http://minio:9000", "bucket": "backups", "credentialsSecret": {"name": "s3"},
             "serverSideEncryption": "AES256"}  # fmt: skip
    c = factories.cluster({"backup": {"objectStore": store}})
    for pod in (
        storage.stateful_set(c, SETTINGS, 0)["spec"]["template"]["spec"],
        instances.stateful_set(c, SETTINGS, 0, "writer", 1)["spec"]["template"]["spec"],
    ):
        assert env_of(pod["containers"][0])[Env.S3_SSE] == "AES256"
    plain = storage.stateful_set(factories.cluster(FULL), SETTINGS, 0)["spec"]["template"]["spec"]
    assert Env.S3_SSE not in env_of(plain["containers"][0])
    with pytest.raises(ValueError, match="serverSideEncryption"):
        factories.cluster({"backup": {"objectStore": {**store, "serverSideEncryption": "aws:kms"}}})
    with pytest.raises(ValueError, match="a restore only reads its source"):  # it would be ignored there
        factories.cluster({"restore": {"sourceCluster": "old", "objectStore": store}})


@pytest.mark.parametrize(
    "spec", [{}, FULL, {"instances": {"volumeSize": "1Gi"}, "tls": {"enabled": True, "secretName": "t"}}]
)
def test_manifests_survive_the_typed_kubernetes_models(spec: dict[str, Any]) -> None:
    """lightkube's models (from the Kubernetes OpenAPI) drop unknown fields: a typo shows up here."""
    for manifest in everything(factories.cluster(spec)):
        typed: Any = codecs.from_dict(manifest)
        assert typed.to_dict() == manifest, manifest["metadata"]["name"]


def test_the_data_api_mounts_only_the_listed_secrets_and_its_key_is_created_once() -> None:
    c = factories.cluster({"dataApi": {"secrets": ["demo-app", "reporting"]}})
    deployment = data_api.deployment(c, Settings())
    pod = deployment["spec"]["template"]["spec"]
    mounted = sorted(v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v)
    assert mounted == ["demo-app", "demo-data-api-keys", "demo-tls", "reporting"]
    # the published CA (no key): it connects with verify-full,
    assert [v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v] == ["demo-ca"]
    assert env_of(pod["containers"][0])[EnvDataApi.DATABASE_CA_FILE] == "/etc/quorumdb/cluster-ca/ca.crt"
    # and it serves HTTPS with the cluster's certificate, which names its Service,
    assert env_of(pod["containers"][0])[EnvDataApi.TLS_DIR] == "/etc/quorumdb/tls"
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert data_api.url(c) == "https://demo-data-api.db.svc:8080"
    assert "demo-data-api.db.svc" in names.tls_dns_names(c, "cluster.local")
    plain = factories.cluster({"dataApi": {}, "tls": {"enabled": False}})
    assert data_api.url(plain) == "http://demo-data-api.db.svc:8080"
    (plain_container,) = data_api.deployment(plain, Settings())["spec"]["template"]["spec"]["containers"]
    assert "scheme" not in plain_container["readinessProbe"]["httpGet"]
    assert pod["automountServiceAccountToken"] is False  # no Kubernetes credentials in the Data API
    assert data_api.allowed_secrets(factories.cluster({"dataApi": {}})) == ["demo-app"]
    assert not data_api.wanted(factories.cluster({"dataApi": {"enabled": False}}))
    one, two = data_api.keys_secret(c)["stringData"], data_api.keys_secret(c)["stringData"]
    assert one["accessKeyId"] != two["accessKeyId"]  # random: rendered once, at creation (plan)
