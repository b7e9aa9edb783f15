"""One pass of one ``AuroraSnapshot`` (observe → ``snapshots.step`` → apply), and its deletion.

Why apart from the cluster's passes: a snapshot is its own object with its own lifetime (it outlives the
cluster); its pass reads the cluster, the instance's job and the bucket, and writes only the snapshot's
status (through the handler's patch) and objects under the snapshot's own prefix.
"""

from __future__ import annotations

import asyncio
import datetime
import logging

from aurora_api import backups as bk
from aurora_api import contract
from aurora_api.v1alpha1 import cluster as api
from aurora_api.v1alpha1 import snapshot as snap

from ..instances import Instances
from ..kube import Kube
from ..objectstore import ObjectStore, StoreError
from . import backup_pass, snapshots

log = logging.getLogger(__name__)
API_VERSION = f"{contract.API_GROUP}/{contract.API_VERSION}"


async def run(kube: Kube, instances: Instances, s: snap.AuroraSnapshot) -> snapshots.Step:
    now = datetime.datetime.now(datetime.UTC)
    ns = s.metadata.namespace
    raw = await kube.get(API_VERSION, api.KIND, ns, s.spec.cluster_name)
    cluster = api.AuroraCluster.model_validate(raw) if raw is not None else None
    inputs = snapshots.Inputs(now=now, cluster=cluster)
    if s.status.phase == "Running" and s.status.object_store is not None:
        urls = await backup_pass.instance_urls(kube, ns, s.spec.cluster_name)
        url = urls.get(s.status.instance)
        jobs = await instances.backups(url) if url else None
        job = next((j for j in jobs or () if j.id == s.status.backup_id), None)
        store = await backup_pass.store_for(kube, ns, s.status.object_store, s.status.prefix)
        record = await asyncio.to_thread(store.record, s.status.backup_id)
        segments: frozenset[int] = frozenset()
        if record is not None and cluster is not None and cluster.spec.backup is not None:
            cluster_store = await backup_pass.store_for(
                kube, ns, cluster.spec.backup.object_store, backup_pass.cluster_prefix(cluster)
            )
            segments = (await asyncio.to_thread(cluster_store.catalog)).segments
        inputs = snapshots.Inputs(now=now, cluster=cluster, job=job, record=record, segments=segments)
    result = snapshots.step(s, inputs)
    if result.request is not None:
        urls = await backup_pass.instance_urls(kube, ns, s.spec.cluster_name)
        sub = snapshots.snapshot_dir(s)
        code = await instances.start_backup(
            urls.get(result.request, ""), snapshots.backup_id(s), f"snapshot {s.metadata.name}", sub
        ) if result.request in urls else 0  # fmt: skip
        if code != 202:
            log.info(
                "snapshot %s: %s answered %d; trying again next pass", s.metadata.name, result.request, code
            )
            return snapshots.Step(s.status)  # stays Pending: nothing recorded, asked again next pass
    if result.copy_segments and cluster is not None and cluster.spec.backup is not None:
        cluster_store = await backup_pass.store_for(
            kube, ns, cluster.spec.backup.object_store, backup_pass.cluster_prefix(cluster)
        )
        catalog = await asyncio.to_thread(cluster_store.catalog)
        wanted = set(result.copy_segments)
        keys = [k for k in catalog.wal_keys
                if bk.archived_segments([k]) & wanted or "/wal/history/" in k]  # fmt: skip
        copied = await asyncio.to_thread(cluster_store.copy_into, keys, s.status.prefix)
        status = result.status.model_copy(update={"size_bytes": result.status.size_bytes + copied})
        return snapshots.Step(status, event=result.event)
    return result


async def delete(kube: Kube, s: snap.AuroraSnapshot) -> tuple[bool, str]:
    """Remove the snapshot's objects unless its policy keeps them: (done as asked, what happened).

    Never blocks the deletion: when the store cannot be reached or the credentials Secret is already gone
    (a namespace being deleted removes it too), the objects are left in the bucket and the caller reports
    it, rather than holding the AuroraSnapshot, and with it the namespace, in Terminating for ever."""
    if s.spec.deletion_policy == "Retain" or s.status.object_store is None or not s.status.prefix:
        where = s.status.location or "(none)"
        return True, f"deletionPolicy {s.spec.deletion_policy}: objects at {where} kept"
    try:
        store: ObjectStore = await backup_pass.store_for(
            kube, s.metadata.namespace, s.status.object_store, s.status.prefix
        )
        n = await asyncio.to_thread(store.delete_prefix)
    except (LookupError, *StoreError) as err:
        return False, f"objects at {s.status.location} left in the bucket: {str(err)[:300]}"
    return True, f"deleted {n} objects at {s.status.location}"
