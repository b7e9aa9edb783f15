"""Direct writes (``fsutil.DirectWriter``): aligned blocks skip the page cache, anything else still lands
(real files in tmp_path)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from aurora_storage import fsutil


def test_aligned_blocks_then_an_unaligned_tail_all_land(tmp_path: Path) -> None:
    block = fsutil.aligned_buffer(1 << 20)
    block[:] = os.urandom(len(block))
    path = tmp_path / "f"
    w = fsutil.DirectWriter(path)
    if not w.direct:
        w.close()
        pytest.skip("this file system refuses O_DIRECT")
    w.write(block)
    w.write(block[:8192])
    assert w.direct  # aligned buffer, length and offset: no fallback
    w.write(memoryview(b"tail"))  # 4 bytes: not a block multiple, so the file goes buffered
    assert not w.direct
    w.write(block[:4096])  # and stays buffered (the offset is no longer aligned)
    w.sync()
    w.close()
    assert path.read_bytes() == bytes(block) + bytes(block[:8192]) + b"tail" + bytes(block[:4096])


def test_unaligned_memory_falls_back_without_losing_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * 64  # 16 KiB in an ordinary (unaligned) bytes object
    path = tmp_path / "g"
    w = fsutil.DirectWriter(path)
    w.write(memoryview(data)[1:])
    w.sync()
    w.close()
    assert path.read_bytes() == data[1:]


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "h").write_bytes(b"kept")
    with pytest.raises(FileExistsError):
        fsutil.DirectWriter(tmp_path / "h")
    assert (tmp_path / "h").read_bytes() == b"kept"
