"""One backup pass of one cluster: observe (object store, the recorded job, a writer mark), decide
(``backups.decide``), apply (request the backup, write the proven mark, delete expired objects), report.

Why apart from the main pass: the object store may be slow or down, and a failover must never wait for
it, so the store is read before taking the cluster's lock and written after releasing it; only the
decision and the status patch run under the lock, on the AuroraCluster as stored then.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aurora_api import backups as bk
from aurora_api import contract
from aurora_api.reports import BackupJobReport
from aurora_api.v1alpha1 import cluster as api
from aurora_api.v1alpha1.cluster import AuroraCluster, ObjectStoreSpec

from ..instances import Instances
from ..kube import Kube
from ..objectstore import ObjectStore, StoreError
from . import backups, conditions, observe

log = logging.getLogger(__name__)

MARK_MARGIN = datetime.timedelta(seconds=1)
"""A mark's time is this much before the writer's LSN is read: a commit is stamped just before its record
is inserted and flushed, so one stamped by ``time`` is at or below the LSN read a second later."""


async def _secret_value(kube: Kube, namespace: str, name: str, key: str, what: str) -> bytes:
    secret = await kube.get("v1", "Secret", namespace, name)
    if secret is None:
        raise LookupError(f"Secret {name!r} with the {what} not found")
    data = secret.get("data") or {}
    if key not in data:
        raise LookupError(f"Secret {name!r} has no key {key!r}")
    return base64.b64decode(data[key])


async def store_for(kube: Kube, namespace: str, spec: ObjectStoreSpec, prefix: str) -> ObjectStore:
    """An ``ObjectStore`` with the credentials (and private CA, if any) from the referenced Secrets;
    LookupError if one is missing."""
    ref = spec.credentials_secret
    creds = "object-store credentials"
    access = await _secret_value(kube, namespace, ref.name, ref.access_key_id_key, creds)
    secret = await _secret_value(kube, namespace, ref.name, ref.secret_access_key_key, creds)
    ca = spec.ca_secret
    bundle = None
    if ca is not None:
        bundle = await _secret_value(kube, namespace, ca.name, ca.key, "object store's CA bundle")
    return ObjectStore(spec, access.decode(), secret.decode(), prefix, bundle)


def cluster_prefix(c: AuroraCluster) -> str:
    assert c.spec.backup is not None
    return (c.spec.backup.object_store.prefix or f"{c.metadata.namespace}/{c.metadata.name}").strip("/")


@dataclasses.dataclass(frozen=True)
class Result:
    described: list[str]
    events: list[tuple[str, str, str]]


async def instance_urls(kube: Kube, namespace: str, cluster: str) -> dict[str, str]:
    """Instance name -> base URL of its instance manager, for the cluster's pods that have an IP."""
    labels = {contract.LABEL_CLUSTER: cluster}
    pods = await kube.list_objects("v1", "Pod", namespace, labels)
    out = {}
    for pod in pods:
        instance = pod["metadata"].get("labels", {}).get(contract.LABEL_INSTANCE)
        url = observe.pod_url(pod, contract.INSTANCE_HTTP_PORT)
        if instance and url:
            out[instance] = url
    return out


async def run(
    kube: Kube,
    instances: Instances,
    c: AuroraCluster,
    locked: Callable[[Callable[[AuroraCluster], Awaitable[Any]]], Awaitable[Any]],
) -> Result:
    """One pass; ``locked(fn)`` runs ``fn`` on the freshly read cluster under the cluster's lock."""
    assert c.spec.backup is not None
    now = datetime.datetime.now(datetime.UTC)
    urls = await instance_urls(kube, c.metadata.namespace, c.metadata.name)
    # Observe outside the lock: the store (slow or down), the recorded job, and a mark.
    store: ObjectStore | None = None
    catalog, error = None, ""
    try:
        store = await store_for(kube, c.metadata.namespace, c.spec.backup.object_store, cluster_prefix(c))
        catalog = await asyncio.to_thread(store.catalog)
    except (LookupError, ValueError, *StoreError) as err:
        error = str(err)[:500]
    jobs: dict[str, list[BackupJobReport] | None] = {}
    running = c.status.backup.running if c.status.backup else None
    if running is not None and running.instance in urls:
        jobs[running.instance] = await instances.backups(urls[running.instance])
    mark = None
    writer = c.status.writer
    if writer in urls and c.status.failover is None:
        before = datetime.datetime.now(datetime.UTC) - MARK_MARGIN
        report = await instances.status(urls[writer])
        if report is not None and report.role == "writer" and report.flushed_lsn:
            mark = api.WalMark(time=before.replace(microsecond=0), lsn=report.flushed_lsn)

    async def decide_and_record(fresh: AuroraCluster) -> backups.Outcome | None:
        if fresh.spec.backup is None:
            return None
        rec = fresh.status.backup.running if fresh.status.backup else None
        writer_inst = next((i for i in fresh.status.instances if i.name == fresh.status.writer), None)
        inputs = backups.Inputs(
            now=now, catalog=catalog, store_error=error, mark=mark, readers=backups.reader_lags(fresh),
            writer=fresh.status.writer if writer_inst is not None and writer_inst.ready else None,
            job=backups.job_of(jobs, rec) if rec is not None else None,
        )  # fmt: skip
        outcome = backups.decide(fresh, inputs)
        if outcome.start is not None and outcome.start.instance not in urls:
            outcome = dataclasses.replace(outcome, start=None, status=outcome.status.model_copy(update={
                "running": fresh.status.backup.running if fresh.status.backup else None}))  # fmt: skip
        merged = conditions.merge(fresh.status.conditions, [outcome.condition], now.replace(microsecond=0))
        others = [cond for cond in fresh.status.conditions if cond.type != backups.CONDITION]
        patch = {
            "backup": outcome.status.model_dump(by_alias=True, mode="json"),
            "conditions": [cond.model_dump(by_alias=True, mode="json") for cond in others + merged],
        }
        # Recorded before the request: a restart follows this job instead of starting another.
        if not await kube.patch_cluster_status(
            fresh.metadata.namespace, fresh.metadata.name, patch, fresh.metadata.resource_version
        ):
            return None
        if outcome.start is not None:
            code = await instances.start_backup(
                urls[outcome.start.instance], outcome.start.backup_id, outcome.start.reason
            )
            log.info("base backup %s requested from %s: HTTP %d", outcome.start.backup_id,
                     outcome.start.instance, code)  # fmt: skip
        if outcome.clear_request:
            await kube.patch_cluster_annotations(
                fresh.metadata.namespace, fresh.metadata.name, {backups.REQUEST_ANNOTATION: None}
            )
        return outcome

    outcome: backups.Outcome | None = await locked(decide_and_record)
    if outcome is None:
        return Result([], [])
    described = []
    events = list(outcome.events)
    if outcome.start is not None:
        described.append(f"base backup {outcome.start.backup_id} requested from {outcome.start.instance}")
        events.append(("Normal", "BackupStarted", f"base backup {outcome.start.backup_id} from "
                       f"{outcome.start.instance}: {outcome.start.reason}"))  # fmt: skip
    # Writes to the store after the lock.
    if store is not None and (outcome.write_restorable is not None or outcome.delete):
        try:
            if outcome.write_restorable is not None:
                await asyncio.to_thread(store.write_restorable, outcome.write_restorable)
            if outcome.delete:
                await asyncio.to_thread(store.delete, list(outcome.delete))
                described.append(f"retention: deleted {len(outcome.delete)} expired objects")
        except StoreError as err:
            log.warning("writing to the object store: %s", err)
    if error and not _store_failing(c):
        events.append(("Warning", "ObjectStoreUnavailable", error))
    return Result(described, events)


FINAL_MARK_SECONDS = 90.0
"""How long a deletion waits for the archive to hold the writer's last WAL (a switch, then sealing and the
upload take a few seconds; the store may be slow)."""
FINAL_MARK_POLL = 2.0


async def final_mark(
    kube: Kube, instances: Instances, c: AuroraCluster, timeout: float = FINAL_MARK_SECONDS
) -> tuple[str, str]:
    """Before a cluster with an object store is deleted: prove and write one last mark, so that "latest"
    after the deletion is the moment of the deletion (every commit acknowledged before it), not the last
    periodic mark. The writer switches WAL (its open segment is then sealed and archived at once), and the
    mark is written once the archive is contiguous past the writer's flush position read just before.
    Bounded: after ``timeout`` (or with no reachable writer) the last recorded mark stands, and the Event
    says so. Returns the Event's (type, message)."""
    assert c.spec.backup is not None
    urls = await instance_urls(kube, c.metadata.namespace, c.metadata.name)
    writer = c.status.writer
    stays = "the latest restorable time stays the last recorded one"
    if writer not in urls:
        return "Warning", f"final backup mark: writer {writer} unreachable; {stays}"
    if await _leaving(kube, c, writer):
        return "Warning", f"final backup mark: the pod of {writer} is being deleted (its namespace?); {stays}"
    before = datetime.datetime.now(datetime.UTC) - MARK_MARGIN
    report = await instances.status(urls[writer])
    if report is None or report.role != contract.ROLE_WRITER or not report.flushed_lsn:
        return "Warning", f"final backup mark: {writer} is not a running writer; {stays}"
    mark = bk.Restorable(time=before.replace(microsecond=0), lsn=report.flushed_lsn)
    switched = await instances.switch_wal(urls[writer])
    store = await store_for(kube, c.metadata.namespace, c.spec.backup.object_store, cluster_prefix(c))
    started = time.monotonic()
    while True:
        try:
            catalog = await asyncio.to_thread(store.catalog)
            if backups.final_mark_proven(catalog, mark):
                await asyncio.to_thread(store.write_restorable, mark)
                waited = time.monotonic() - started
                return "Normal", (
                    f"final backup mark: every commit until {mark.time.isoformat()} (WAL {mark.lsn}) is "
                    f"archived and restorable (switched WAL at {switched or 'n/a'}; waited {waited:.1f}s)"
                )
        except StoreError as err:
            log.warning("final backup mark of %s: %s", c.metadata.name, err)
        if time.monotonic() - started > timeout:
            return "Warning", (
                f"final backup mark: the archive did not reach WAL {mark.lsn} within {timeout:.0f}s; {stays}"
            )
        if await _leaving(kube, c, writer):  # e.g. the whole namespace is being deleted: nothing will come
            return "Warning", f"final backup mark: the pod of {writer} went away while waiting; {stays}"
        await asyncio.sleep(FINAL_MARK_POLL)


async def _leaving(kube: Kube, c: AuroraCluster, instance: str) -> bool:
    """The instance's pod is gone or being deleted."""
    labels = {contract.LABEL_CLUSTER: c.metadata.name, contract.LABEL_INSTANCE: instance}
    pods = await kube.list_objects("v1", "Pod", c.metadata.namespace, labels)
    return not pods or any(p["metadata"].get("deletionTimestamp") for p in pods)


def _store_failing(c: AuroraCluster) -> bool:
    return any(
        cond.type == backups.CONDITION and cond.reason == "ObjectStoreUnavailable"
        for cond in c.status.conditions
    )
