"""Which local segments a storage node may delete, with no I/O.

Why it exists: pg_receivewal never deletes WAL (one node reached 1.3 GB in research). A segment may go
only when it is archived (the object store holds a verified copy) and is older than the repair window
(``keep`` segments behind the newest one), so peers can still repair from this node without the archive.
Never delete the newest segment, partial files, or history files. It must not touch files.
"""

from __future__ import annotations

from collections.abc import Iterable

from aurora_storage import lsn as lsnmod


def deletable(names: Iterable[lsnmod.WalName], archived: set[str], keep: int) -> list[lsnmod.WalName]:
    names = list(names)
    segs = [n for n in names if n.kind is not lsnmod.WalKind.HISTORY]
    if not segs:
        return []
    newest = max(n.segno for n in segs)
    return [
        n
        for n in segs
        if n.kind is lsnmod.WalKind.SEGMENT and n.filename in archived and n.segno < newest - keep
    ]
