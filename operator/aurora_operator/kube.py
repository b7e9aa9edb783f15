"""The narrow Kubernetes API the reconciler needs, with a lightkube adapter and an in-memory fake.

Why a Protocol: the reconciler is tested end to end (observe -> plan -> apply -> report, twice, as after an
operator restart) against ``FakeKube`` instead of a wall of patches. Contract every implementation keeps:
``apply`` is server-side apply with force (idempotent); ``create`` returns False if the object exists (never
overwrites); ``delete`` returns False if absent; lists are by exact label match within one namespace.
"""

from __future__ import annotations

import base64
import copy
from typing import Any, Protocol

from aurora_api import contract
from lightkube import ApiError, AsyncClient, codecs
from lightkube.core.resource import Resource
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources import apps_v1, core_v1, networking_v1, policy_v1, rbac_authorization_v1
from lightkube.types import PatchType

Manifest = dict[str, Any]

AuroraClusterResource: Any = create_namespaced_resource(
    contract.API_GROUP, contract.API_VERSION, "AuroraCluster", "auroraclusters"
)

AuroraSnapshotResource: Any = create_namespaced_resource(
    contract.API_GROUP, contract.API_VERSION, "AuroraSnapshot", "aurorasnapshots"
)

RESOURCES: dict[tuple[str, str], type[Resource]] = {
    ("v1", "Pod"): core_v1.Pod,
    ("v1", "Secret"): core_v1.Secret,
    ("v1", "Service"): core_v1.Service,
    ("v1", "ConfigMap"): core_v1.ConfigMap,
    ("v1", "ServiceAccount"): core_v1.ServiceAccount,
    ("v1", "PersistentVolumeClaim"): core_v1.PersistentVolumeClaim,
    ("apps/v1", "StatefulSet"): apps_v1.StatefulSet,
    ("apps/v1", "Deployment"): apps_v1.Deployment,
    ("policy/v1", "PodDisruptionBudget"): policy_v1.PodDisruptionBudget,
    ("networking.k8s.io/v1", "NetworkPolicy"): networking_v1.NetworkPolicy,
    ("rbac.authorization.k8s.io/v1", "Role"): rbac_authorization_v1.Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): rbac_authorization_v1.RoleBinding,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): rbac_authorization_v1.ClusterRoleBinding,
    (f"{contract.API_GROUP}/{contract.API_VERSION}", "AuroraCluster"): AuroraClusterResource,
    (f"{contract.API_GROUP}/{contract.API_VERSION}", "AuroraSnapshot"): AuroraSnapshotResource,
}


class Kube(Protocol):
    async def list_objects(
        self, api_version: str, kind: str, namespace: str, labels: dict[str, str]
    ) -> list[Manifest]:
        """Objects of one kind in ``namespace`` carrying all of ``labels``."""

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Manifest | None:
        """One object, or None when it does not exist."""

    async def list_nodes(self) -> list[Manifest]:
        """All nodes."""

    async def get_volume(self, name: str) -> Manifest | None:
        """One PersistentVolume, or None when it does not exist."""

    async def apply(self, manifest: Manifest) -> None:
        """Server-side apply, forcing ownership of the fields in ``manifest``."""

    async def create(self, manifest: Manifest) -> bool:
        """Create; False (and no change) when an object of that name exists."""

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete; False when it did not exist."""

    async def patch_metadata(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        labels: dict[str, str],
        annotations: dict[str, str],
    ) -> None:
        """Merge labels and annotations into an existing object."""

    async def orphan(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Remove the object's owner references so garbage collection leaves it; False when absent."""

    async def patch_cluster_status(
        self, namespace: str, name: str, status: Manifest, resource_version: str | None = None
    ) -> bool:
        """Merge ``status`` into an AuroraCluster's status. With ``resource_version``, only if the object
        is still at that version (compare-and-set): False when it changed since (or is gone)."""

    async def patch_cluster_annotations(
        self, namespace: str, name: str, annotations: dict[str, str | None]
    ) -> None:
        """Merge annotations into an AuroraCluster (None removes one)."""

    async def resize_pod(self, namespace: str, name: str, container: str, resources: Manifest) -> bool:
        """Change one container's requests and limits in place (the ``resize`` subresource); False when
        the pod is gone."""


class LightKube:
    """``Kube`` over lightkube's async client."""

    def __init__(self, client: AsyncClient, field_manager: str) -> None:
        self._client = client
        self._manager = field_manager

    async def list_objects(
        self, api_version: str, kind: str, namespace: str, labels: dict[str, str]
    ) -> list[Manifest]:
        res: Any = RESOURCES[api_version, kind]
        selector: Any = labels
        found = self._client.list(res, namespace=namespace, labels=selector)
        return [_to_dict(obj) async for obj in found]

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Manifest | None:
        res: Any = RESOURCES[api_version, kind]
        try:
            return _to_dict(await self._client.get(res, name, namespace=namespace or None))
        except ApiError as err:
            if err.status.code == 404:
                return None
            raise

    async def list_nodes(self) -> list[Manifest]:
        return [_to_dict(obj) async for obj in self._client.list(core_v1.Node)]

    async def get_volume(self, name: str) -> Manifest | None:
        try:
            return _to_dict(await self._client.get(core_v1.PersistentVolume, name))
        except ApiError as err:
            if err.status.code == 404:
                return None
            raise

    async def apply(self, manifest: Manifest) -> None:
        obj: Any = codecs.from_dict(manifest)
        await self._client.apply(obj, field_manager=self._manager, force=True)

    async def create(self, manifest: Manifest) -> bool:
        obj: Any = codecs.from_dict(manifest)
        try:
            await self._client.create(obj)
        except ApiError as err:
            if err.status.code == 409:
                return False
            raise
        return True

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        res: Any = RESOURCES[api_version, kind]
        try:
            await self._client.delete(res, name, namespace=namespace or None)
        except ApiError as err:
            if err.status.code == 404:
                return False
            raise
        return True

    async def patch_metadata(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        labels: dict[str, str],
        annotations: dict[str, str],
    ) -> None:
        res: Any = RESOURCES[api_version, kind]
        body = {"metadata": {"labels": labels, "annotations": annotations}}
        await self._client.patch(res, name, body, namespace=namespace)

    async def orphan(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        res: Any = RESOURCES[api_version, kind]
        body = {"metadata": {"ownerReferences": None}}
        try:
            await self._client.patch(res, name, body, namespace=namespace, patch_type=PatchType.MERGE)
        except ApiError as err:
            if err.status.code == 404:
                return False
            raise
        return True

    async def patch_cluster_status(
        self, namespace: str, name: str, status: Manifest, resource_version: str | None = None
    ) -> bool:
        body: Manifest = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            await self._client.patch(
                AuroraClusterResource.Status, name, body, namespace=namespace, patch_type=PatchType.MERGE
            )
        except ApiError as err:
            if err.status.code in (404, 409):
                return False
            raise
        return True

    async def patch_cluster_annotations(
        self, namespace: str, name: str, annotations: dict[str, str | None]
    ) -> None:
        body = {"metadata": {"annotations": annotations}}
        await self._client.patch(
            AuroraClusterResource, name, body, namespace=namespace, patch_type=PatchType.MERGE
        )

    async def resize_pod(self, namespace: str, name: str, container: str, resources: Manifest) -> bool:
        body = {"spec": {"containers": [{"name": container, "resources": resources}]}}
        try:
            await self._client.patch(core_v1.Pod.Resize, name, body, namespace=namespace)
        except ApiError as err:
            if err.status.code == 404:
                return False
            raise
        return True


def _to_dict(obj: Any) -> Manifest:
    result: Manifest = obj.to_dict()
    return result


class FakeKube:
    """In-memory ``Kube`` for tests: a dict of objects keyed by (kind, namespace, name), plus a call log."""

    def __init__(self, nodes: list[Manifest] | None = None) -> None:
        self.objects: dict[tuple[str, str, str], Manifest] = {}
        self.nodes = nodes or []
        self.volumes: dict[str, Manifest] = {}
        """PersistentVolumes (cluster-scoped) by name."""
        self.calls: list[str] = []
        self.fail_kinds: set[str] = set()

    def put(self, manifest: Manifest) -> None:
        meta = manifest["metadata"]
        stored = copy.deepcopy(manifest)
        if stored["kind"] == "Secret" and stored.get("stringData"):
            # As the API server does (it also drops stringData; kept here for tests that read it).
            encoded = {k: base64.b64encode(v.encode()).decode() for k, v in stored["stringData"].items()}
            stored["data"] = {**(stored.get("data") or {}), **encoded}
        self.objects[manifest["kind"], meta.get("namespace", ""), meta["name"]] = stored

    async def list_objects(
        self, api_version: str, kind: str, namespace: str, labels: dict[str, str]
    ) -> list[Manifest]:
        return [
            copy.deepcopy(obj)
            for (k, ns, _), obj in sorted(self.objects.items())
            if k == kind and ns == namespace and labels.items() <= obj["metadata"].get("labels", {}).items()
        ]

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Manifest | None:
        obj = self.objects.get((kind, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    async def list_nodes(self) -> list[Manifest]:
        return copy.deepcopy(self.nodes)

    async def get_volume(self, name: str) -> Manifest | None:
        volume = self.volumes.get(name)
        return copy.deepcopy(volume) if volume is not None else None

    async def apply(self, manifest: Manifest) -> None:
        if manifest["kind"] in self.fail_kinds:
            raise RuntimeError(f"injected failure applying {manifest['kind']}")
        self.calls.append(f"apply {manifest['kind']}/{manifest['metadata']['name']}")
        self.put(manifest)

    async def create(self, manifest: Manifest) -> bool:
        meta = manifest["metadata"]
        if (manifest["kind"], meta.get("namespace", ""), meta["name"]) in self.objects:
            return False
        self.calls.append(f"create {manifest['kind']}/{meta['name']}")
        self.put(manifest)
        return True

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        self.calls.append(f"delete {kind}/{name}")
        return self.objects.pop((kind, namespace, name), None) is not None

    async def patch_metadata(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        labels: dict[str, str],
        annotations: dict[str, str],
    ) -> None:
        obj = self.objects[kind, namespace, name]
        obj["metadata"].setdefault("labels", {}).update(labels)
        obj["metadata"].setdefault("annotations", {}).update(annotations)
        self.calls.append(f"label {kind}/{name}")

    async def orphan(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        obj = self.objects.get((kind, namespace, name))
        if obj is None:
            return False
        obj["metadata"].pop("ownerReferences", None)
        self.calls.append(f"orphan {kind}/{name}")
        return True

    async def patch_cluster_status(
        self, namespace: str, name: str, status: Manifest, resource_version: str | None = None
    ) -> bool:
        obj = self.objects.get(("AuroraCluster", namespace, name))
        if obj is None:
            return False
        meta = obj["metadata"]
        if resource_version and meta.get("resourceVersion", "") != resource_version:
            self.calls.append(f"status conflict AuroraCluster/{name}")
            return False
        obj["status"] = {**obj.get("status", {}), **copy.deepcopy(status)}
        meta["resourceVersion"] = str(int(meta.get("resourceVersion") or 0) + 1)
        self.calls.append(f"status AuroraCluster/{name}")
        return True

    async def patch_cluster_annotations(
        self, namespace: str, name: str, annotations: dict[str, str | None]
    ) -> None:
        meta = self.objects["AuroraCluster", namespace, name]["metadata"]
        found = meta.setdefault("annotations", {})
        for key, value in annotations.items():
            if value is None:
                found.pop(key, None)
            else:
                found[key] = value
        self.calls.append(f"annotate AuroraCluster/{name}")

    async def resize_pod(self, namespace: str, name: str, container: str, resources: Manifest) -> bool:
        pod = self.objects.get(("Pod", namespace, name))
        if pod is None:
            return False
        for c in pod["spec"]["containers"]:
            if c["name"] == container:
                c["resources"] = copy.deepcopy(resources)
        self.calls.append(f"resize Pod/{name}")
        return True
