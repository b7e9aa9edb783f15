"""One archive round: the owner uploads (read back); a non-owner waits and says when to look again."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aurora_storage import lsn as lsnmod
from aurora_storage import s3
from aurora_storage.node import archiver, runtime, store


class FakeArchive:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.puts = 0

    def head(self, key: str) -> s3.ObjectInfo | None:
        if key not in self.objects:
            return None
        data, meta = self.objects[key]
        return s3.ObjectInfo(key, len(data), meta["sha256"])

    def put(self, key: str, data: bytes, meta: dict[str, str], *, compress: bool = False) -> int:
        self.puts += 1
        self.objects[key] = (data, meta)
        return len(data)


def _rt(tmp_path: Path, ordinal: int) -> Any:
    return SimpleNamespace(
        store=store.WalStore(tmp_path),
        cfg=SimpleNamespace(s3=SimpleNamespace(prefix="p"), ordinal=ordinal, archive_takeover_s=30.0),
        state=SimpleNamespace(system_identifier="42"),
        counters=runtime.Counters(),
    )


async def test_owner_uploads_non_owner_waits_for_the_takeover_deadline(tmp_path: Path) -> None:
    rt = _rt(tmp_path, ordinal=1)
    mine, other = lsnmod.segment_name(1, 1), lsnmod.segment_name(1, 2)  # owners: node 1, node 2
    for name in (mine, other):
        (rt.store.wal / name).write_bytes(name.encode() * 10)
    rt.store.seal_completed()
    fake = FakeArchive()
    due = await archiver._round(rt, fake)  # type: ignore[arg-type]
    assert fake.puts == 1 and rt.counters.segments_archived == 1
    rec = rt.store.sealed(mine)
    assert rec is not None and rec.archived
    other_rec = rt.store.sealed(other)
    assert other_rec is not None and not other_rec.archived
    assert due is not None and 25 < due <= 30  # look again when the owner's grace period ends
    # Nothing left to do for this node but wait: a second round uploads nothing.
    assert await archiver._round(rt, fake) is not None  # type: ignore[arg-type]
    assert fake.puts == 1
