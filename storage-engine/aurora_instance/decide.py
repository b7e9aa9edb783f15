"""The decision core: one immutable ``World`` in, at most one action and one sentence out. Pure.

Why: the dangerous choices (start a writer on local WAL? promote now? rejoin how?) are made here and only
here, each returning a sentence that is logged every cycle and asserted in tests. The rules:

- no instance ever initdb's an existing cluster: without a data directory, a writer bootstraps only when
  enough storage nodes prove that no cluster exists; otherwise it waits to be re-seeded as a reader, or,
  when the control plane chose it again at a newer term than any storage node holds (no reader could take
  over) and the cluster has an object store, it is re-seeded from the newest base backup and promoted
  through the storage quorum's WAL;
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
from aurora_instance.storage import StorageIdentity

STALLED_REJOIN_SECONDS = 20.0


class Action(enum.Enum):
    BOOTSTRAP_WRITER = "bootstrap writer"
    RESTORE_WRITER = "restore writer from backup"
    SEED_WRITER = "re-seed writer from the object store"
    BOOTSTRAP_READER = "bootstrap reader"
    START = "start"
    RECOVER_WRITER = "recover writer from quorum"
    PROMOTE = "promote"
    PROMOTE_COPY = "promote a base backup copy"
    REJOIN = "rejoin as reader"
    RELOAD = "apply configuration"
    PAUSE = "pause"


class Decision(NamedTuple):
    action: Action | None
    sentence: str


def decide(w: World) -> Decision:
    if w.action is not None:
        return Decision(None, f"waiting: {w.action} in progress")
    if w.local.data is DataDir.MISSING:
        return _no_data(w)
    if w.paused:
        return _paused(w)
    if w.intent.role == contract.ROLE_WRITER:
        return _writer(w)
    return _reader(w)


def cluster_exists(identity: StorageIdentity) -> bool:
    """A term or a pinned system identifier on any node: a writer fenced it, so the cluster exists."""
    return identity.system_identifier is not None or identity.highest_term > 0


def seed_needed(w: World) -> bool:
    """A writer without a data directory while the storage nodes hold the cluster: it must not initdb, and
    can only come back as a reader of another writer (the operator promotes one and demotes this one) or,
    once chosen again at a newer term, re-seeded from the object store (``reseed_chosen``)."""
    identity = w.storage_identity
    return (
        w.local.data is DataDir.MISSING
        and w.intent.role == contract.ROLE_WRITER
        and identity is not None
        and cluster_exists(identity)
        and not reseed_chosen(w)
    )


def reseed_chosen(w: World) -> bool:
    """The control plane chose this data-less writer again after its loss: its term is newer than every
    storage node's (a promotion raises the term only when it decides), and an object store holds backups."""
    identity = w.storage_identity
    return w.object_store and identity is not None and w.intent.term > identity.highest_term


def _no_data(w: World) -> Decision:
    intent, identity = w.intent, w.storage_identity
    if identity is not None and cluster_exists(identity):
        if intent.role == contract.ROLE_WRITER and reseed_chosen(w):
            return Decision(
                Action.SEED_WRITER,
                f"no data directory; chosen as the writer at term {intent.term}, newer than the storage "
                f"nodes' {identity.highest_term}: re-seeding from the object store's newest base backup, "
                "then promoting through the storage quorum's WAL",
            )
        if intent.role == contract.ROLE_WRITER:
            system = identity.system_identifier or "(identifier not pinned yet)"
            return Decision(
                None,
                f"no data directory, but the storage nodes hold system {system} at term "
                f"{identity.highest_term}: never initdb an existing cluster; "
                "waiting to be re-seeded as a reader",
            )
        return Decision(Action.BOOTSTRAP_READER, f"no data directory: copying the writer at {intent.writer}")
    # If the cluster exists, its writer fenced at least FENCE_QUORUM (3) of the six nodes before its first
    # commit, so at most 3 nodes carry no term: WRITE_QUORUM (4) answers without a term or an identifier
    # prove that it does not exist. With fewer answers, silence proves nothing.
    answered = 0 if identity is None else identity.answered
    if answered < contract.WRITE_QUORUM:
        return Decision(
            None,
            f"no data directory and only {answered} storage nodes answered: "
            "cannot tell whether the cluster exists; waiting",
        )
    if intent.role == contract.ROLE_WRITER and w.restore_from is not None:
        return Decision(
            Action.RESTORE_WRITER,
            f"no data directory and none of the {answered} storage nodes that answered knows a cluster: "
            f"restoring {w.restore_from} as the new writer at term {intent.term}",
        )
    if intent.role == contract.ROLE_WRITER:
        return Decision(
            Action.BOOTSTRAP_WRITER,
            f"no data directory and none of the {answered} storage nodes that answered knows a cluster: "
            f"bootstrapping a new writer at term {intent.term}",
        )
    return Decision(Action.BOOTSTRAP_READER, f"no data directory: copying the writer at {intent.writer}")


def _paused(w: World) -> Decision:
    """Paused: PostgreSQL stops only with no client connected (a client that came in after the operator
    judged the instance idle keeps it up), and a stopped instance stays stopped until a resume. Stopping
    is a clean shutdown: a writer's shutdown checkpoint reaches the storage nodes like any WAL, and it
    starts again as the cleanly stopped writer of the same term."""
    if not w.postmaster_running:
        return Decision(None, "paused: PostgreSQL stopped until a client connects")
    if w.pg is None:
        return Decision(None, "pause asked: waiting for PostgreSQL to answer")
    if w.pg.connections > 0:
        return Decision(None, f"pause asked but {w.pg.connections} client connections are open: waiting")
    return Decision(Action.PAUSE, "pausing: no client connection, stopping PostgreSQL cleanly")


def _writer(w: World) -> Decision:
    term = w.intent.term
    if not w.postmaster_running:
        # A base backup (a re-seeded writer's) also says "in production"; it has only the WAL of the quorum.
        if w.crashed_writer and not w.local.copy:
            return Decision(
                Action.RECOVER_WRITER,
                "writer stopped without a clean shutdown: recovering to the storage quorum's end "
                f"at term {term}, "
                "not to its local WAL",
            )
        if w.local.copy:
            return Decision(
                Action.PROMOTE_COPY,
                f"a base backup that never ran must become writer at term {term}: promoting through the "
                "storage quorum's WAL",
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
        return Decision(
            Action.RELOAD,
            "configuration changed (user parameters, certificate, token roles): applying it with a reload",
        )
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
