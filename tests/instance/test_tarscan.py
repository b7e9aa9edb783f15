"""The tar scanner: finds one member of a tar stream fed in arbitrary pieces, like ``tarfile`` reads it."""

from __future__ import annotations

import io
import os
import tarfile

import pytest
from aurora_instance import tarscan


def _tar(members: list[tuple[str, bytes]], fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        d = tarfile.TarInfo("pg_wal")
        d.type = tarfile.DIRTYPE
        tar.addfile(d)
    return out.getvalue()


MANIFEST = b'{"PostgreSQL-Backup-Manifest-Version": 1, "WAL-Ranges": []}\n'


@pytest.mark.parametrize("piece", [1, 7, 511, 512, 513, 4096, 1 << 20])
def test_the_wanted_member_is_found_whatever_the_pieces(piece: int) -> None:
    long_dir = "base/16384/" + "d" * 120  # a name past 100 bytes: ustar's prefix field
    stream = _tar([("PG_VERSION", b"15\n"), (f"{long_dir}/1259", os.urandom(70_001)), ("empty", b""),
                   ("backup_manifest", MANIFEST)])  # fmt: skip
    s = tarscan.Scanner("backup_manifest")
    for i in range(0, len(stream), piece):
        s.feed(stream[i : i + piece])
    assert s.wanted == MANIFEST and s.members == 5 and s.ended


def test_no_such_member_and_a_corrupt_header() -> None:
    stream = _tar([("PG_VERSION", b"15\n")])
    s = tarscan.Scanner("backup_manifest")
    s.feed(stream)
    assert s.wanted is None and s.ended
    bad = bytearray(stream)
    bad[0] ^= 0xFF  # the name: the header checksum no longer matches
    with pytest.raises(tarscan.TarError, match="checksum"):
        tarscan.Scanner("backup_manifest").feed(bytes(bad))
    with pytest.raises(tarscan.TarError, match="exceeds"):
        tarscan.Scanner("big", limit=10).feed(_tar([("big", b"x" * 11)]))
