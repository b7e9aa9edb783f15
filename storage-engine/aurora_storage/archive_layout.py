"""Where WAL lives in object storage, with no I/O.

Why it exists: the storage nodes write the archive and a restoring instance reads it, so the key layout
is a small, documented, pure function both import (the operator, which imports neither package, reads the
same keys through ``aurora_api.backups``). Layout under the cluster's prefix ``P`` (see
docs/storage-engine.md and docs/backup.md):

    P/wal/<TTTTTTTT>/<segment name>     completed 16 MiB segments of timeline T
    P/wal/history/<TTTTTTTT>.history    timeline history files

Each object carries metadata ``sha256`` (of the plaintext), ``start-lsn``, ``end-lsn``, ``uploaded-by`` and
``system-identifier``, and when encrypted ``encryption`` (scheme and key id) and ``plain-size``.
``.partial`` files are never archived. It must not talk to S3.
"""

from __future__ import annotations

from aurora_storage import lsn as lsnmod


def key_for(prefix: str, name: str) -> str:
    wn = lsnmod.parse_wal_name(name)
    if wn.kind is lsnmod.WalKind.PARTIAL:
        raise ValueError(f"{name}: partial segments are never archived")
    base = f"{prefix}/wal" if prefix else "wal"
    if wn.kind is lsnmod.WalKind.HISTORY:
        return f"{base}/history/{name}"
    return f"{base}/{wn.timeline:08X}/{name}"


def wal_prefix(prefix: str) -> str:
    return f"{prefix}/wal/" if prefix else "wal/"


def name_from_key(key: str) -> str | None:
    """The WAL file name of an archive key, or None for keys that are not archived WAL."""
    name = key.rsplit("/", 1)[-1]
    return name if lsnmod.is_wal_name(name) and not name.endswith(".partial") else None


def metadata(name: str, sha256: str, uploaded_by: int, system_identifier: str | None) -> dict[str, str]:
    wn = lsnmod.parse_wal_name(name)
    meta = {"sha256": sha256, "uploaded-by": str(uploaded_by)}
    if wn.kind is lsnmod.WalKind.SEGMENT:
        meta["start-lsn"] = lsnmod.format_lsn(wn.start_lsn())
        meta["end-lsn"] = lsnmod.format_lsn(wn.end_lsn())
    if system_identifier:
        meta["system-identifier"] = system_identifier
    return meta
