"""Whether a new cluster can be restored as asked, decided once before anything is created. Pure.

Why before: users of other operators find a target outside the window only after the new cluster was
bootstrapped (and then deleted by hand). Here the source's catalog is read first; a target outside the
restorable window leaves the cluster ``Failed`` with a condition naming the window, and nothing exists to
clean up. The decision (backup, target, the LSN a recovery to the end must reach) is recorded in
``status.restore`` and handed to the instance pods; it never changes afterwards.
"""

from __future__ import annotations

import datetime

from aurora_api import backups as bk
from aurora_api.v1alpha1 import cluster as api
from aurora_api.v1alpha1.cluster import AuroraCluster

from .backups import Catalog

CONDITION = "Restore"


def _iso(t: datetime.datetime) -> str:
    return t.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def check(
    c: AuroraCluster, catalog: Catalog, store: api.ObjectStoreSpec, prefix: str
) -> api.RestoreStatus | str:
    """The restore to carry out, or why it is refused. For a snapshot, ``prefix`` is the snapshot's: its
    one backup restored to its consistent point."""
    r = c.spec.restore
    assert r is not None
    source = f"s3://{store.bucket}/{prefix}"
    segments = set(catalog.segments)
    window = bk.window(catalog.backups, segments, catalog.restorable)
    if window is None:
        return f"{source} holds no usable base backup (nothing is restorable)"
    target = r.point_in_time
    if target is not None and target.tzinfo is None:
        target = target.replace(tzinfo=datetime.UTC)
    if target is not None and target not in window:
        return f"target {_iso(target)} is outside the restorable window of {source}: {window.describe()}"
    chosen = bk.choose(catalog.backups, segments, target)
    end = bk.contiguous_end(segments, chosen.start)
    assert end is not None  # chosen is usable
    if r.snapshot is not None:
        label = f"snapshot {r.snapshot}"
    else:
        label = "latest" if target is None else _iso(target)
    return api.RestoreStatus(
        source=source,
        object_store=store,
        prefix=prefix,
        target=label,
        backup_id=chosen.id,
        window=window.describe(),
        min_lsn=bk.format_lsn(bk.segment_start(bk.segment_of(end) - 1)),
    )
