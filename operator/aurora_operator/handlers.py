"""kopf handlers: parse the body, call ``reconcile.loop``, write status, post Events. Nothing else.

Why so thin: level-based reconcile (resume + create + update + a timer on one function) means any handler
invocation does the same full, idempotent pass; kopf's own retry/backoff covers crashes. Status is written
explicitly through ``patch.status``; kopf's progress bookkeeping lives in annotations, not in our status.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import logging
import time
from typing import Any

import kopf
import pydantic
from aurora_api import contract
from aurora_api.v1alpha1 import cluster as api
from aurora_api.v1alpha1 import snapshot as snap
from lightkube import AsyncClient

from .instances import HttpInstances
from .kube import Kube, LightKube
from .objectstore import StoreError
from .reconcile import (
    announce,
    autoscale_pass,
    backup_pass,
    conditions,
    loop,
    observe,
    pause_pass,
    snapshot_pass,
)
from .render import names
from .settings import Settings
from .storage_nodes import HttpStorageNodes

log = logging.getLogger(__name__)
GROUP, VERSION = contract.API_GROUP, contract.API_VERSION
RESYNC_SECONDS = 5.0
"""Timer period: fast enough that Ready is reported within seconds, cheap for a handful of clusters."""
DRIFT_SECONDS = 60.0
"""At most this long between full re-applies that undo manual edits of operator-owned fields."""
BACKUP_SECONDS = 10.0
"""Period of the backup pass: reads the object store, proves the restorable time, starts base backups."""
SCALE_SECONDS = 2.0
"""Period of the autoscaler's pass: two samples (about 4 s) of sustained pressure scale an instance up."""
SNAPSHOT_SECONDS = 5.0
"""Period of a running snapshot's pass."""
WATCH_SECONDS = 1.0
"""Period of the writer watch: how quickly a silent writer (or a change in progress) gets a full pass. A
writer pod deleted or stopping wakes the watch at once (``writer_pod_changed``)."""


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING  # kopf's own log-to-Event mirroring; ours use kopf.event()
    ours = Settings.from_env()
    memo.settings = ours
    memo.kube = LightKube(AsyncClient(field_manager=ours.field_manager), ours.field_manager)
    memo.locks = {}
    memo.last_resync = {}
    memo.storage = HttpStorageNodes()
    memo.instances = HttpInstances()
    memo.silence = {}
    memo.announced = set()
    memo.cas = {}
    memo.wake = {}
    memo.autoscale = {}
    memo.pause = {}


def _wake(memo: kopf.Memo, namespace: str, cluster: str) -> asyncio.Event:
    wake: dict[tuple[str, str], asyncio.Event] = memo.wake
    return wake.setdefault((namespace, cluster), asyncio.Event())


async def _tokens(memo: kopf.Memo, namespace: str, cluster: str) -> tuple[str, ...]:
    """A cluster's control tokens, from the Secret ``<cluster>-control`` (read each pass: a cluster deleted
    and created again under its name has new ones; a rotation adds the previous one for a while). Until the
    Secret exists no pod of the cluster can start, so none is needed."""
    kube: Kube = memo.kube
    found = await kube.get("v1", "Secret", namespace, names.control_secret_of(cluster))
    data = (found or {}).get("data") or {}
    keys = (contract.SecretsLayout.TOKEN, contract.SecretsLayout.PREVIOUS)
    return tuple(base64.b64decode(data[k]).decode() for k in keys if data.get(k))


async def _clients(
    memo: kopf.Memo, cluster: api.AuroraCluster
) -> tuple[HttpInstances | None, HttpStorageNodes | None]:
    """The pods' HTTP clients for one cluster (None without clients: unit tests of the handlers)."""
    return await _clients_of(memo, cluster.metadata.namespace, cluster.metadata.name)


async def _clients_of(
    memo: kopf.Memo, ns: str, name: str
) -> tuple[HttpInstances | None, HttpStorageNodes | None]:
    """The HTTP clients of cluster ``name``'s pods: signing changes with its control tokens, verifying its
    pods by its CA."""
    instances: HttpInstances | None = memo.instances
    storage: HttpStorageNodes | None = memo.storage
    if instances is None or storage is None:
        return None, None
    tokens, ca = await asyncio.gather(_tokens(memo, ns, name), _ca(memo, ns, name))
    cas: dict[tuple[str, str], bytes | None] = memo.cas
    cas[ns, name] = ca  # for the writer watch's status reads between passes
    return instances.with_tokens(tokens, ca), storage.with_tokens(tokens, ca)


async def _ca(memo: kopf.Memo, namespace: str, cluster: str) -> bytes | None:
    """The cluster's CA certificate, to verify its pods' control endpoints by (None: it has none, TLS off;
    pods that serve HTTPS are then not trusted at all)."""
    kube: Kube = memo.kube
    found = await kube.get("v1", "Secret", namespace, names.ca_secret_of(cluster))
    cert = ((found or {}).get("data") or {}).get(contract.TLS_CERT)
    return base64.b64decode(cert) if cert else None


def _lock(memo: kopf.Memo, uid: str) -> asyncio.Lock:
    locks: dict[str, asyncio.Lock] = memo.locks
    return locks.setdefault(uid, asyncio.Lock())


def _parse(body: kopf.Body, patch: kopf.Patch) -> api.AuroraCluster | None:
    try:
        return api.AuroraCluster.model_validate(dict(body))
    except pydantic.ValidationError as err:
        message = f"spec rejected by the operator: {err.errors()[0]['loc']}: {err.errors()[0]['msg']}"
        kopf.event(body, type="Warning", reason="InvalidSpec", message=message)
        generation = int(body.get("metadata", {}).get("generation", 0))
        cond = conditions.make("Ready", False, "InvalidSpec", message, generation)
        cond.last_transition_time = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        patch.status["phase"] = "Failed"
        patch.status["conditions"] = [cond.model_dump(by_alias=True, mode="json")]
        return None


def _live(body: kopf.Body) -> api.AuroraCluster | None:
    """The cluster for a side pass (backup, scaling); None when its spec is invalid (the main pass reports
    that) or it is being deleted."""
    try:
        cluster = api.AuroraCluster.model_validate(dict(body))
    except pydantic.ValidationError:
        return None
    return None if cluster.metadata.deletion_timestamp else cluster


async def _pass(memo: kopf.Memo, cluster: api.AuroraCluster, *, resync: bool) -> loop.Outcome:
    """One pass, status written, all under the cluster's lock, on the AuroraCluster as stored now.

    Why not kopf's ``patch``: kopf applies it after the handler returns, outside the lock, so a status
    computed before another pass recorded a writer change could land after it and erase it. Why re-read:
    the body a handler got may predate such a record, and deciding on it would undo it.
    """
    silence: dict[str, observe.Silence] = memo.silence
    kube: Kube = memo.kube
    async with _lock(memo, cluster.metadata.uid):
        meta = cluster.metadata
        fresh = await kube.get(cluster.api_version, api.KIND, meta.namespace, meta.name)
        if fresh is None:
            return loop.Outcome(None, [], [])
        cluster = api.AuroraCluster.model_validate(fresh)
        if cluster.metadata.deletion_timestamp and not cluster.spec.deletion_protection:
            return loop.Outcome(None, [], [])  # being deleted: only the delete handler acts (a protected
            # cluster held in Deleting by the finalizer keeps being served, failovers included)
        instances, storage = await _clients(memo, cluster)
        outcome = await loop.reconcile(
            kube, memo.settings, cluster, resync=resync, storage=storage, instances=instances,
            silence=silence.setdefault(cluster.metadata.uid, observe.Silence()),
        )  # fmt: skip
        if outcome.status is not None:
            status = outcome.status.model_dump(by_alias=True, mode="json")
            await kube.patch_cluster_status(meta.namespace, meta.name, status)
            await _announce(memo, cluster, outcome.status)
        return outcome


async def _announce(memo: kopf.Memo, cluster: api.AuroraCluster, status: api.AuroraClusterStatus) -> None:
    """Create the Events of the writer change in ``status`` that this process has not seen created (409:
    created before, by this operator or its predecessor)."""
    kube: Kube = memo.kube
    seen: set[str] = memo.announced
    now = datetime.datetime.now(datetime.UTC)
    for event in announce.writer_changes(cluster, status, now, memo.settings.field_manager):
        name = event["metadata"]["name"]
        if name in seen:
            continue
        try:
            await kube.create(event)
        except Exception as err:  # an Event is a notice: the next pass tries again
            log.warning("could not post Event %s: %s", name, err)
            continue
        seen.add(name)


def _post(body: kopf.Body, outcome: loop.Outcome) -> None:
    for event in outcome.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


@kopf.on.resume(GROUP, VERSION, api.PLURAL)
@kopf.on.create(GROUP, VERSION, api.PLURAL)
@kopf.on.update(GROUP, VERSION, api.PLURAL)
@kopf.timer(GROUP, VERSION, api.PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
async def reconcile_cluster(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    cluster = _parse(body, patch)
    if cluster is None:
        return
    last: dict[str, float] = memo.last_resync
    now = time.monotonic()
    resync = now - last.get(cluster.metadata.uid, now) >= DRIFT_SECONDS
    last.setdefault(cluster.metadata.uid, now)
    outcome = await _pass(memo, cluster, resync=resync)
    if resync:
        last[cluster.metadata.uid] = now
    _post(body, outcome)


@kopf.timer(GROUP, VERSION, api.PLURAL, interval=BACKUP_SECONDS, initial_delay=BACKUP_SECONDS,
            field="spec.backup", value=kopf.PRESENT)  # fmt: skip
async def backup_cluster(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Continuous backup: its own pass and timer, so a slow or unreachable store never delays a failover."""
    cluster = _live(body)
    if cluster is None or cluster.spec.backup is None:
        return
    instances = (await _clients(memo, cluster))[0]
    if instances is None:
        return
    result = await backup_pass.run(memo.kube, instances, cluster, _locked(memo, cluster))
    for type_, reason, message in result.events:
        kopf.event(body, type=type_, reason=reason, message=message)


def _locked(memo: kopf.Memo, cluster: api.AuroraCluster) -> pause_pass.Locked:
    """Runs a side pass's write on the AuroraCluster as stored now, under the cluster's lock."""
    kube: Kube = memo.kube

    async def locked(fn: Any) -> Any:
        async with _lock(memo, cluster.metadata.uid):
            meta = cluster.metadata
            fresh = await kube.get(cluster.api_version, api.KIND, meta.namespace, meta.name)
            if fresh is None:
                return None
            return await fn(api.AuroraCluster.model_validate(fresh))

    return locked


@kopf.timer(GROUP, VERSION, api.PLURAL, interval=SCALE_SECONDS, initial_delay=SCALE_SECONDS)
async def scale_cluster(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Serverless: each instance's ACU follows its load, resized in place (``reconcile.autoscale``), and a
    cluster with ``minCapacity: 0`` pauses when idle and resumes for a client (``reconcile.pause``). Runs
    for every cluster (returning at once for the others) so a pause outlives turning serverless off."""
    cluster = _live(body)
    if cluster is None or (cluster.spec.instances.serverless is None and cluster.status.pause is None):
        return
    uid = cluster.metadata.uid
    scaling: dict[str, autoscale_pass.Memory] = memo.autoscale
    pausing: dict[str, pause_pass.Memory] = memo.pause
    instances = (await _clients(memo, cluster))[0]
    if instances is None:
        return
    seen = await autoscale_pass.look(memo.kube, instances, cluster)
    now = time.monotonic()
    scaled = await autoscale_pass.run(
        memo.kube, cluster, seen, scaling.setdefault(uid, autoscale_pass.Memory()), now
    )
    paused = await pause_pass.run(
        memo.kube, instances, cluster, seen, pausing.setdefault(uid, pause_pass.Memory()), now,
        datetime.datetime.now(datetime.UTC), _locked(memo, cluster),
    )  # fmt: skip
    for type_, reason, message in scaled.events + paused.events:
        kopf.event(body, type=type_, reason=reason, message=message)


# cancellation_polling: kopf keeps the finalizer until the daemon has exited and only looks again on the next
# event; in a namespace being deleted there may be none, and the AuroraCluster stayed Deleting for ever.
@kopf.daemon(GROUP, VERSION, api.PLURAL, cancellation_timeout=10.0, cancellation_polling=1.0)
async def watch_writer(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any) -> None:
    """Every second, a cheap look at the writer (its pod and its status endpoint); when it looks dead, or a
    writer change is in progress, a full pass right away instead of at the next timer tick. The pass itself
    decides (``reconcile.failover``): this loop only makes detection take seconds, not a resync period."""
    meta = body.get("metadata", {})
    wake = _wake(memo, meta.get("namespace", ""), meta.get("name", ""))
    while not stopped:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), WATCH_SECONDS)
        wake.clear()
        if stopped or body.get("metadata", {}).get("deletionTimestamp"):
            continue
        try:
            cluster = api.AuroraCluster.model_validate(dict(body))
        except pydantic.ValidationError:
            continue  # the timer's pass reports the invalid spec
        ca = memo.cas.get((cluster.metadata.namespace, cluster.metadata.name))
        if not await loop.needs_attention(memo.kube, memo.instances.with_tokens((), ca), cluster) or stopped:
            continue
        _post(body, await _pass(memo, cluster, resync=False))


@kopf.on.event("v1", "pods", labels={contract.LABEL_ROLE: contract.ROLE_WRITER})
async def writer_pod_changed(event: kopf.RawEvent, meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    """Any change of a writer-labelled pod (deleted, being deleted, a container stopped) wakes its
    cluster's writer watch now: a deleted writer is noticed in milliseconds, not at the next tick."""
    cluster = meta.get("labels", {}).get(contract.LABEL_CLUSTER)
    if cluster:
        _wake(memo, meta.get("namespace", ""), cluster).set()


@kopf.on.delete(GROUP, VERSION, api.PLURAL)
async def delete_cluster(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    cluster = api.AuroraCluster.model_validate(dict(body))
    patch.status["phase"] = "Deleting"  # timers stop once deletion starts: the phase is set here
    if cluster.spec.deletion_protection:
        message = "deletion protection is on: set spec.deletionProtection=false and the delete proceeds"
        kopf.event(body, type="Warning", reason="DeletionProtected", message=message)
        raise kopf.TemporaryError(message, delay=15)
    backed_up = cluster.spec.backup is not None and cluster.status.system_identifier
    instances = (await _clients(memo, cluster))[0] if backed_up else None  # reads the token Secret
    if instances is not None:
        try:
            kind, message = await backup_pass.final_mark(memo.kube, instances, cluster)
        except (LookupError, ValueError, *StoreError) as err:  # never keeps the cluster from going
            kind, message = "Warning", f"final backup mark: {err}"[:1000]
        kopf.event(body, type=kind, reason="FinalBackupMark", message=message)
    done = await loop.teardown(memo.kube, cluster)
    policy = cluster.spec.storage.reclaim_policy
    message = f"reclaimPolicy {policy}: {', '.join(done) or 'nothing to do'}; owned objects follow by GC"
    kopf.event(body, type="Normal", reason="Deleting", message=message)


@kopf.on.resume(GROUP, VERSION, snap.PLURAL)
@kopf.on.create(GROUP, VERSION, snap.PLURAL)
@kopf.timer(GROUP, VERSION, snap.PLURAL, interval=SNAPSHOT_SECONDS, initial_delay=SNAPSHOT_SECONDS)
async def take_snapshot(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """One step of the snapshot's state machine (``reconcile.snapshots``); Completed and Failed are final."""
    snapshot = snap.AuroraSnapshot.model_validate(dict(body))
    if snapshot.status.phase in ("Completed", "Failed") or snapshot.metadata.deletion_timestamp:
        return
    try:
        instances, _nodes = await _clients_of(memo, snapshot.metadata.namespace, snapshot.spec.cluster_name)
        assert instances is not None
        result = await snapshot_pass.run(memo.kube, instances, snapshot)
    except (LookupError, ValueError, *StoreError) as err:
        kopf.event(body, type="Warning", reason="SnapshotDelayed", message=str(err)[:500])
        return
    patch.status.update(result.status.model_dump(by_alias=True, mode="json", exclude_none=True))
    if result.event is not None:
        kopf.event(body, type=result.event[0], reason=result.event[1], message=result.event[2])


@kopf.on.delete(GROUP, VERSION, snap.PLURAL)
async def delete_snapshot(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Deleting a snapshot deletes its objects, unless its deletionPolicy is Retain."""
    snapshot = snap.AuroraSnapshot.model_validate(dict(body))
    done, message = await snapshot_pass.delete(memo.kube, snapshot)
    kopf.event(body, type="Normal" if done else "Warning", reason="Deleting" if done else "ObjectsKept",
               message=message)  # fmt: skip
