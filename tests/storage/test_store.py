"""The node's WAL directory: sealing, verified reads, quarantine, installs (real files in tmp_path)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from aurora_storage import checksum
from aurora_storage import lsn as lsnmod
from aurora_storage.node import store

SEG = lsnmod.segment_name(1, 3)


def _write_partial(wal: Path, pages: int) -> None:
    buf = bytearray(lsnmod.WAL_SEGMENT_SIZE)
    start = lsnmod.segment_start(3)
    for i in range(pages):
        buf[i * 8192 : i * 8192 + 24] = struct.pack("<HHIQI", 0xD110, 0, 1, start + i * 8192, 0) + b"\x01" * 4
    (wal / (SEG + ".partial")).write_bytes(bytes(buf))


def test_partial_is_served_up_to_written_data(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    _write_partial(s.wal, 3)
    data, end = s.read_partial(SEG + ".partial")
    assert len(data) == 2 * 8192 + 24
    assert end == lsnmod.segment_start(3) + len(data)
    [entry] = s.entries()
    assert entry.kind == "partial" and entry.end_lsn == end and entry.sha256 is None


def test_seal_then_verified_read_then_corruption_is_quarantined(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    (s.wal / SEG).write_bytes(b"A" * 4096)
    [rec] = s.seal_completed()
    assert rec.sha256 == checksum.sha256_bytes(b"A" * 4096)
    assert s.seal_completed() == []
    data, _ = s.read_verified(SEG)
    assert data == b"A" * 4096
    raw = bytearray((s.wal / SEG).read_bytes())
    raw[100] ^= 0x01
    (s.wal / SEG).write_bytes(bytes(raw))
    with pytest.raises(checksum.ChecksumError):
        s.read_verified(SEG)
    assert not (s.wal / SEG).exists() and list(s.quarantine.iterdir())
    with pytest.raises(store.WalMissingError):
        s.read_verified(SEG)


def test_scrub_finds_flipped_byte(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    (s.wal / SEG).write_bytes(b"B" * 1000)
    s.seal_completed()
    raw = bytearray((s.wal / SEG).read_bytes())
    raw[0] ^= 0x80
    (s.wal / SEG).write_bytes(bytes(raw))
    assert s.verify_all() == [SEG]


def test_install_verifies_before_it_lands(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    with pytest.raises(checksum.ChecksumError):
        s.install(SEG, b"data", checksum.sha256_bytes(b"other"), "peer:1")
    assert not (s.wal / SEG).exists()
    s.install(SEG, b"data", checksum.sha256_bytes(b"data"), "peer:1")
    rec = s.sealed(SEG)
    assert rec is not None and rec.source == "peer:1"
    s.mark_archived(SEG)
    assert [e.archived for e in s.entries()] == [True]
    s.delete(SEG)
    assert s.entries() == []


def test_hold_then_release_keeps_older_segments_only(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    for n in (3, 4):
        (s.wal / lsnmod.segment_name(1, n)).write_bytes(b"x")
    (s.wal / (lsnmod.segment_name(1, 5) + ".partial")).write_bytes(b"y")
    (s.wal / "00000001.history").write_bytes(b"h")
    held = s.hold_all()
    assert len(held) == 4 and s.names() == []
    (s.wal / (lsnmod.segment_name(1, 4) + ".partial")).write_bytes(b"new stream")
    s.release_held(below_segno=4)
    names = sorted(wn.filename for wn in s.names())
    assert names == sorted(
        ["00000001.history", lsnmod.segment_name(1, 3), lsnmod.segment_name(1, 4) + ".partial"]
    )
    assert len(list(s.quarantine.iterdir())) == 2


def test_records_are_cached_and_survive_a_restart(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    (s.wal / SEG).write_bytes(b"C" * 100)
    [rec] = s.seal_completed()
    s.mark_archived(SEG)
    assert [(wn.filename, r.archived) for wn, r in s.completed()] == [(SEG, True)]
    # The manifest file stays the durable truth: a new store (process restart) reads the same record.
    again = store.WalStore(tmp_path)
    got = again.sealed(SEG)
    assert got is not None and got.sha256 == rec.sha256 and got.archived
    assert again.seal_completed() == []


def test_quarantine_and_delete_drop_the_cached_record(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    (s.wal / SEG).write_bytes(b"D" * 100)
    s.seal_completed()
    (s.wal / SEG).write_bytes(b"E" * 100)  # corrupted behind the store's back
    with pytest.raises(checksum.ChecksumError):
        s.read_verified(SEG)
    assert s.sealed(SEG) is None and not (s.manifest / f"{SEG}.json").exists()
    # The receiver (or repair) writes it again: it is sealed anew, with the new checksum.
    (s.wal / SEG).write_bytes(b"F" * 100)
    [rec] = s.seal_completed()
    assert rec.sha256 == checksum.sha256_bytes(b"F" * 100)
    s.delete(SEG)
    assert s.sealed(SEG) is None and s.completed() == []


def test_unreadable_manifest_record_quarantines_its_file(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    (s.wal / SEG).write_bytes(b"G" * 100)
    s.seal_completed()
    (s.manifest / f"{SEG}.json").write_bytes(b"{not json")
    fresh = store.WalStore(tmp_path)
    assert fresh.sealed(SEG) is None
    assert not (fresh.wal / SEG).exists() and list(fresh.quarantine.iterdir())
    with pytest.raises(store.WalMissingError):
        fresh.read_verified(SEG)


def test_install_checks_every_expected_digest_and_batches_directory_syncs(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    good = checksum.sha256_bytes(b"data")
    with pytest.raises(checksum.ChecksumError):
        s.install(SEG, b"data", good, "peer:1", also_expected=checksum.sha256_bytes(b"other"))
    assert not (s.wal / SEG).exists() and s.sealed(SEG) is None
    assert s.install(SEG, memoryview(b"data"), good, "peer:1", also_expected=good, sync_dirs=False) == good
    s.sync_dirs()
    data, digest = s.read_verified(SEG)
    assert data == b"data" and digest == good
    assert store.WalStore(tmp_path).sealed(SEG) is not None


def test_superseded_held_files_lose_their_records(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    old, newer = lsnmod.segment_name(1, 3), lsnmod.segment_name(1, 4)
    for name in (old, newer):
        (s.wal / name).write_bytes(b"x")
    s.seal_completed()
    s.hold_all()
    s.release_held(below_segno=4)
    assert s.sealed(old) is not None and s.sealed(newer) is None
    assert not (s.manifest / f"{newer}.json").exists()


def test_received_bytes_are_hashed_as_written_and_installed_only_when_they_match(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    good = checksum.sha256_bytes(b"abcdef")
    with s.receive(SEG, "peer:1") as bad:
        bad.write(b"abc")
        bad.write(bytearray(b"dXf"))
        with pytest.raises(checksum.ChecksumError):
            bad.commit(good)
    assert not (s.wal / SEG).exists() and s.sealed(SEG) is None and list(s.tmp.iterdir()) == []
    with s.receive(SEG, "peer:2") as incoming:
        incoming.write(b"abc")
        incoming.write(memoryview(b"def"))
        assert incoming.commit(good, also_expected=good) == good
    s.sync_dirs()
    rec = s.sealed(SEG)
    assert rec is not None and (rec.source, rec.size) == ("peer:2", 6)
    assert s.read_verified(SEG) == (b"abcdef", good) and list(s.tmp.iterdir()) == []


def test_a_copy_arriving_second_is_discarded(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    good = checksum.sha256_bytes(b"same")
    first, second = s.receive(SEG, "archive"), s.receive(SEG, "peer:3")  # a hedged repair: both in flight
    for incoming in (first, second):
        incoming.write(b"same")
    assert first.commit(good) == good
    assert second.commit(good) is None
    rec = s.sealed(SEG)
    assert rec is not None and rec.source == "archive" and list(s.tmp.iterdir()) == []


def test_an_interrupted_transfer_leaves_nothing_behind(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    with pytest.raises(ConnectionError), s.receive(SEG, "peer:1") as incoming:
        incoming.write(b"half")
        raise ConnectionError("peer went away")
    assert list(s.tmp.iterdir()) == [] and s.names() == []
    (s.tmp / f"{SEG}.7").write_bytes(b"left by a crash")
    assert list(store.WalStore(tmp_path).tmp.iterdir()) == []
    with pytest.raises(lsnmod.LsnError):
        s.receive("../state.json", "peer:1")


def test_set_aside_moves_files_to_quarantine_as_superseded(tmp_path: Path) -> None:
    s = store.WalStore(tmp_path)
    (s.wal / SEG).write_bytes(b"old timeline")
    s.seal_completed()
    s.set_aside([SEG], "timeline 1 ended before it")
    assert s.names() == [] and s.sealed(SEG) is None
    assert [p.name for p in s.quarantine.iterdir()] == [f"{SEG}.superseded"]
