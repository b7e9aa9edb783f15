"""What a storage node must fetch to fill its gaps, and from where, with no I/O.

Why it exists: a node that lost its volume or missed segments restarts its receiver at the slot's
position (the current segment); everything before that inside the repair window must come from peers
(checksum-verified) or, for segments no peer still holds, from the archive. Planning is pure so that
every gap shape is unit-tested. Files of an older timeline past where the newest known history says it
ended (``history.off_history``) are never wanted, from peers or the archive. It must not fetch anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aurora_storage import history as historymod
from aurora_storage import lsn as lsnmod

ARCHIVE = -1
"""Source id meaning "the object store" in :attr:`Fetch.sources`."""


@dataclass(frozen=True)
class PeerFile:
    name: str
    sha256: str | None


@dataclass(frozen=True)
class Fetch:
    name: str
    sha256: str | None
    """Expected digest when a peer reported one (archive objects carry their own)."""
    sources: tuple[int, ...]
    """Peer ordinals to try in order, then :data:`ARCHIVE` when the archive lists it."""


def plan(
    local: Iterable[str],
    peers: Mapping[int, Iterable[PeerFile]],
    archived: Iterable[str],
    keep: int,
    rotate: int = 0,
    history: historymod.History | None = None,
) -> list[Fetch] | None:
    """Files to fetch, oldest first; None while the node holds no segment yet (its window is unknown).

    Each file's peer sources are rotated by ``rotate`` plus its position in the list, so consecutive
    files (fetched concurrently) start at different peers, and successive rounds shift the order.

    Wanted: completed segments in ``[newest - keep, newest]`` (newest = highest local segment number)
    that are not held locally (a local ``.partial`` of the same segment is the receiver's job) and are
    not superseded by ``history`` (the newest timeline history the node holds), and history files not
    held locally.
    """
    local_names = {lsnmod.parse_wal_name(n) for n in local}
    segs = [n for n in local_names if n.kind is not lsnmod.WalKind.HISTORY]
    if not segs:
        return None
    newest = max(n.segno for n in segs)
    held = {n.segment for n in local_names}

    def wanted(name: str) -> bool:
        wn = lsnmod.parse_wal_name(name)
        if wn.kind is lsnmod.WalKind.PARTIAL or wn.segment in held or historymod.off_history(wn, history):
            return False
        return wn.kind is lsnmod.WalKind.HISTORY or newest - keep <= wn.segno <= newest

    holders: dict[str, list[tuple[int, str | None]]] = {}
    for ordinal in sorted(peers):
        for pf in peers[ordinal]:
            if wanted(pf.name):
                holders.setdefault(pf.name, []).append((ordinal, pf.sha256))
    in_archive = {n for n in archived if wanted(n)}
    out = []
    for i, name in enumerate(sorted(set(holders) | in_archive, key=lsnmod.parse_wal_name)):
        hs = holders.get(name, [])
        if hs:
            k = (rotate + i) % len(hs)  # per file: a batch fetched in parallel spreads over the peers
            hs = hs[k:] + hs[:k]
        shas = {sha for _, sha in hs if sha}
        sha = shas.pop() if len(shas) == 1 else None
        sources = tuple(o for o, _ in hs) + ((ARCHIVE,) if name in in_archive else ())
        out.append(Fetch(name, sha, sources))
    return out
