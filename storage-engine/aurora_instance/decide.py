"""The decision core: one immutable ``World`` in, at most one action and one sentence out. Pure.

Why: the dangerous choices (start a writer on local WAL? promote now? rejoin how?) are made here and only
here, each returning a sentence that is logged every cycle and asserted in tests. The rules:

- a writer never starts on its own WAL after a crash: it recovers to the storage quorum's end first;
- a reader becomes a writer only through ``promote`` (fence, catch up from the quorum, then promote);
- a former writer only ever comes back as a reader (``rejoin``: pg_rewind, or a fresh copy).

It must not perform I/O or read the clock.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from aurora_api import contract

from aurora_instance.snapshot import DataDir, World

STALLED_REJOIN_SECONDS = 20.0


class Action(enum.Enum):
    BOOTSTRAP_WRITER = "bootstrap writer"
    BOOTSTRAP_READER = "bootstrap reader"
    START = "start"
    RECOVER_WRITER = "recover writer from quorum"
    PROMOTE = "promote"
    REJOIN = "rejoin as reader"
    RELOAD = "apply configuration"


class Decision(NamedTuple):
    action: Action | None
    sentence: str


def decide(w: World) -> Decision:
    if w.action is not None:
        return Decision(None, f"waiting: {w.action} in progress")
    intent = w.intent
    if w.local.data is DataDir.MISSING:
        if intent.role == contract.ROLE_WRITER:
            return Decision(
                Action.BOOTSTRAP_WRITER,
                f"no data directory: bootstrapping a new writer at term {intent.term}",
            )
        return Decision(Action.BOOTSTRAP_READER, f"no data directory: copying the writer at {intent.writer}")
    if intent.role == contract.ROLE_WRITER:
        return _writer(w)
    return _reader(w)


def _writer(w: World) -> Decision:
    term = w.intent.term
    if not w.postmaster_running:
        if w.crashed_writer:
            return Decision(
                Action.RECOVER_WRITER,
                "writer stopped without a clean shutdown: recovering to the storage quorum's end "
                f"at term {term}, "
                "not to its local WAL",
            )
        if w.local.last_role == contract.ROLE_READER or w.local.cluster_state != "shut down":
            return Decision(Action.PROMOTE, f"stopped reader must become writer at term {term}: promoting")
        return Decision(Action.START, f"starting the cleanly stopped writer at term {term}")
    pg = w.pg
    if pg is None:
        return Decision(None, "postmaster running but not answering yet")
    if pg.in_recovery or pg.declared_term < term:
        return Decision(
            Action.PROMOTE,
            f"promoting to term {term}: fence the old writer, catch up from the storage quorum",
        )
    if w.user_config_changed:
        return Decision(Action.RELOAD, "user parameters changed: applying them with a reload")
    return Decision(
        None,
        f"writer healthy on timeline {pg.timeline} at term {term}, "
        f"{pg.sync_nodes} storage nodes acknowledging",
    )


def _reader(w: World) -> Decision:
    writer = w.intent.writer
    if not w.postmaster_running:
        if w.was_writer:
            return Decision(
                Action.REJOIN, f"former writer rejoining as a reader of {writer} (rewind or fresh copy)"
            )
        return Decision(Action.START, f"starting the reader of {writer}")
    pg = w.pg
    if pg is None:
        return Decision(None, "postmaster running but not answering yet")
    if not pg.in_recovery:
        return Decision(
            Action.REJOIN, f"demoted at term {w.intent.term}: stopping the writer to rejoin {writer}"
        )
    if w.stalled_seconds >= STALLED_REJOIN_SECONDS:
        return Decision(
            Action.REJOIN,
            f"no WAL stream from {writer} and no replay progress for {w.stalled_seconds:.0f}s: "
            "rejoining (timeline may have diverged)",
        )
    if w.user_config_changed or pg.declared_term < w.intent.term:
        return Decision(Action.RELOAD, "configuration changed: applying it with a reload")
    lag = pg.lag_seconds
    lag_text = "unknown lag" if lag is None else f"lag {pg.lag_bytes} bytes / {lag:.2f}s"
    return Decision(None, f"reader on timeline {pg.timeline} following {writer}, {lag_text}")
