"""Move old-timeline WAL that the node's newest timeline history supersedes out of ``wal/`` (blocking).

Why it exists: a complete old-timeline segment holding a fork point (and any old-timeline file a node
received while its receiver was not looking) would otherwise stay in the inventory for ever, be served to
peers and restored by repair. This is the thin driver around ``history.superseded``: it reads the newest
``<tli>.history`` the node holds and the data ends of the files, and moves what the decision names to
``quarantine/<name>.superseded`` (as the receiver does with files wholly past a fork). Sealing runs it
after each batch of completed files, repair before each plan. It must not decide anything itself.
"""

from __future__ import annotations

import logging

from aurora_storage import history as historymod
from aurora_storage import lsn as lsnmod
from aurora_storage.node import store as storemod

log = logging.getLogger(__name__)


def newest_history(store: storemod.WalStore, names: list[lsnmod.WalName]) -> historymod.History | None:
    """The parsed history of the highest timeline held (None on timeline 1 or when unreadable)."""
    newest = historymod.newest(names)
    if newest is None:
        return None
    try:
        return historymod.parse(newest.timeline, store.read_small(newest.filename))
    except FileNotFoundError:
        return None
    except historymod.HistoryError as err:  # keep everything; say why nothing was set aside
        log.error("cannot use %s: %s", newest.filename, err)
        return None


def set_aside(store: storemod.WalStore) -> tuple[historymod.History | None, historymod.Verdict]:
    """Move superseded complete segments aside; return the history used and the decision."""
    names = store.names()
    hist = newest_history(store, names)
    if hist is None or not hist.forks:
        return hist, historymod.Verdict((), ())
    held: dict[lsnmod.WalName, int] = {}
    for wn in names:
        if wn.kind is lsnmod.WalKind.SEGMENT:
            held[wn] = wn.end_lsn()
        elif wn.kind is lsnmod.WalKind.PARTIAL:
            try:
                held[wn] = wn.start_lsn() + store.partial_end(wn)
            except FileNotFoundError:
                continue
    verdict = historymod.superseded(held, hist)
    for name in verdict.superseded:
        tli = lsnmod.parse_wal_name(name).timeline
        end = hist.end_of(tli)
        assert end is not None  # superseded() only names files of ended ancestors
        store.set_aside(
            [name], f"timeline {tli} ended at {lsnmod.format_lsn(end)} ({hist.timeline:08X}.history)"
        )
    return hist, verdict
