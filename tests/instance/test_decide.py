"""The decision core: each rule asserted through the sentence it logs (Patroni ``test_ha`` style)."""

from __future__ import annotations

import dataclasses

from aurora_api import contract
from aurora_instance.decide import STALLED_REJOIN_SECONDS, Action, decide, seed_needed
from aurora_instance.snapshot import DataDir, Intent, Local, World
from aurora_instance.sql import PgObservation
from aurora_instance.storage import StorageIdentity

WRITER = Intent(contract.ROLE_WRITER, 3, None)
READER = Intent(contract.ROLE_READER, 3, "w:5432")
PRIMARY = PgObservation(
    in_recovery=False, timeline=3, version="15.18", pending_restart=(), sync_nodes=6, declared_term=3
)
STANDBY = PgObservation(
    in_recovery=True, timeline=3, version="15.18", pending_restart=(), received_lsn=200, replayed_lsn=100,
    replay_age_seconds=0.5, receiver_status="streaming", declared_term=3,
)  # fmt: skip


def world(intent: Intent = WRITER, **kw: object) -> World:
    base = World(
        intent=intent,
        local=Local(DataDir.OURS, None, intent.role),
        postmaster_running=True,
        pg=PRIMARY if intent.role == contract.ROLE_WRITER else STANDBY,
        user_config_changed=False,
        action=None,
        last_failure=None,
        stalled_seconds=0.0,
        storage_identity=None,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_an_action_in_progress_blocks_every_other_decision() -> None:
    d = decide(world(action="promote", postmaster_running=False))
    assert d.action is None
    assert d.sentence == "waiting: promote in progress"


EMPTY = Local(DataDir.MISSING, None, None)
NO_CLUSTER = StorageIdentity(answered=4, system_identifier=None, highest_term=0)
CLUSTER = StorageIdentity(answered=6, system_identifier="7312345678901234567", highest_term=2)


def no_data(intent: Intent = WRITER, identity: StorageIdentity | None = None) -> World:
    return world(intent, local=EMPTY, postmaster_running=False, pg=None, storage_identity=identity)


def test_a_new_cluster_is_bootstrapped_when_four_storage_nodes_know_none() -> None:
    assert decide(no_data(identity=NO_CLUSTER)) == (
        Action.BOOTSTRAP_WRITER,
        "no data directory and none of the 4 storage nodes that answered knows a cluster: "
        "bootstrapping a new writer at term 3",
    )
    assert decide(no_data(READER, NO_CLUSTER)) == (
        Action.BOOTSTRAP_READER,
        "no data directory: copying the writer at w:5432",
    )


def test_without_data_and_fewer_than_four_storage_answers_nothing_is_done() -> None:
    # Three silent nodes may be exactly the three a bootstrap did not fence: silence proves nothing.
    three = NO_CLUSTER._replace(answered=3)
    for intent in (WRITER, READER):
        d = decide(no_data(intent, three))
        assert d.action is None
        assert d.sentence == (
            "no data directory and only 3 storage nodes answered: "
            "cannot tell whether the cluster exists; waiting"
        )
    assert decide(no_data(identity=None)).action is None  # not read (yet): never a bootstrap
    assert "only 0 storage nodes answered" in decide(no_data(identity=None)).sentence


def test_a_writer_without_data_never_initdbs_an_existing_cluster() -> None:
    d = decide(no_data(identity=CLUSTER))
    assert d == (
        None,
        "no data directory, but the storage nodes hold system 7312345678901234567 at term 2: never initdb "
        "an existing cluster; waiting to be re-seeded as a reader",
    )
    fenced_only = StorageIdentity(answered=6, system_identifier=None, highest_term=1)  # nothing streamed yet
    d = decide(no_data(identity=fenced_only))
    assert d.action is None
    assert "at term 1: never initdb an existing cluster" in d.sentence
    # A term on any node is proof enough, however few answered.
    assert decide(no_data(identity=CLUSTER._replace(answered=1))).action is None
    assert "never initdb" in decide(no_data(identity=CLUSTER._replace(answered=1))).sentence


def test_a_reader_without_data_copies_the_writer_of_an_existing_cluster() -> None:
    demoted = Intent(contract.ROLE_READER, 4, "w2:5432")  # the wiped writer after POST /v1/demote
    assert decide(no_data(demoted, CLUSTER)) == (
        Action.BOOTSTRAP_READER,
        "no data directory: copying the writer at w2:5432",
    )


def test_seed_is_needed_only_by_a_writer_without_data_in_an_existing_cluster() -> None:
    assert seed_needed(no_data(identity=CLUSTER))
    assert seed_needed(no_data(identity=StorageIdentity(2, None, 5)))
    assert not seed_needed(no_data(READER, CLUSTER))
    assert not seed_needed(no_data(identity=NO_CLUSTER))
    assert not seed_needed(no_data(identity=None))
    assert not seed_needed(world(storage_identity=CLUSTER))  # has data


def test_a_writer_chosen_again_after_its_loss_is_reseeded_from_the_object_store() -> None:
    # The operator raised the term to this data-less writer (no reader could take over): term 3 > the
    # nodes' 2. With an object store it is re-seeded; the same world without one keeps waiting.
    chosen = dataclasses.replace(no_data(identity=CLUSTER), object_store=True)
    assert decide(chosen) == (
        Action.SEED_WRITER,
        "no data directory; chosen as the writer at term 3, newer than the storage nodes' 2: re-seeding "
        "from the object store's newest base backup, then promoting through the storage quorum's WAL",
    )
    assert not seed_needed(chosen)
    # Its old term (the nodes' own): nobody chose it since the loss, so it waits for the operator.
    same_term = dataclasses.replace(chosen, intent=Intent(contract.ROLE_WRITER, 2, None))
    assert decide(same_term).action is None
    assert seed_needed(same_term)
    # A newer writer exists (the nodes hold a higher term than this one's): never.
    deposed = dataclasses.replace(chosen, storage_identity=CLUSTER._replace(highest_term=4))
    assert decide(deposed).action is None
    assert seed_needed(deposed)
    assert decide(dataclasses.replace(chosen, object_store=False)).action is None


def test_a_reseeded_writer_is_promoted_not_recovered_on_its_backup() -> None:
    # Its base backup's pg_control says "in production" like a crashed writer's, but it holds backup_label
    # (and the state file says writer: the intent it was seeded for, so a restart keeps it).
    copied = Local(DataDir.OURS, "in production", "writer", copy=True)
    d = decide(world(postmaster_running=False, pg=None, local=copied))
    assert d.action is Action.PROMOTE_COPY
    assert d.sentence.startswith("a base backup that never ran must become writer at term 3")
    crashed = Local(DataDir.OURS, "in production", "writer")
    assert decide(world(postmaster_running=False, pg=None, local=crashed)).action is Action.RECOVER_WRITER


def test_crashed_writer_never_restarts_on_its_local_wal() -> None:
    d = decide(world(postmaster_running=False, pg=None, local=Local(DataDir.OURS, "in production", "writer")))
    assert d.action is Action.RECOVER_WRITER
    assert "not to its local WAL" in d.sentence


def test_cleanly_stopped_writer_just_starts() -> None:
    d = decide(world(postmaster_running=False, pg=None, local=Local(DataDir.OURS, "shut down", "writer")))
    assert d == (Action.START, "starting the cleanly stopped writer at term 3")


def test_a_stopped_reader_told_to_write_is_promoted_not_started_as_writer() -> None:
    d = decide(
        world(postmaster_running=False, pg=None, local=Local(DataDir.OURS, "shut down in recovery", "reader"))
    )
    assert d.action is Action.PROMOTE


def test_running_standby_with_writer_intent_is_promoted() -> None:
    d = decide(world(pg=STANDBY))
    assert d.action is Action.PROMOTE
    assert d.sentence.startswith("promoting to term 3: fence the old writer")


def test_writer_with_a_newer_term_redeclares_it_through_promote() -> None:
    assert decide(world(pg=dataclasses.replace(PRIMARY, declared_term=2))).action is Action.PROMOTE


def test_healthy_writer_says_so() -> None:
    assert decide(world()) == (None, "writer healthy on timeline 3 at term 3, 6 storage nodes acknowledging")


def test_user_parameter_change_is_reloaded() -> None:
    assert decide(world(user_config_changed=True)).action is Action.RELOAD


def test_former_writer_comes_back_only_as_a_reader() -> None:
    crashed = Local(DataDir.OURS, "in production", "writer")
    d = decide(world(READER, postmaster_running=False, pg=None, local=crashed))
    assert d == (Action.REJOIN, "former writer rejoining as a reader of w:5432 (rewind or fresh copy)")


def test_running_writer_demoted_by_a_newer_term_rejoins() -> None:
    d = decide(world(READER, pg=PRIMARY))
    assert d.action is Action.REJOIN
    assert d.sentence == "demoted at term 3: stopping the writer to rejoin w:5432"


def test_a_base_backup_is_not_mistaken_for_a_former_writer() -> None:
    # pg_control of a fresh copy says "in production"; the state file written after copying says reader
    copied = Local(DataDir.OURS, "in production", "reader")
    assert decide(world(READER, postmaster_running=False, pg=None, local=copied)).action is Action.START


def test_stalled_reader_rejoins_only_after_the_bound() -> None:
    stalled = dataclasses.replace(STANDBY, receiver_status=None)
    assert decide(world(READER, pg=stalled, stalled_seconds=STALLED_REJOIN_SECONDS - 1)).action is None
    d = decide(world(READER, pg=stalled, stalled_seconds=STALLED_REJOIN_SECONDS))
    assert d.action is Action.REJOIN


def test_reader_following_a_new_writer_reloads() -> None:
    assert decide(world(READER, pg=dataclasses.replace(STANDBY, declared_term=2))).action is Action.RELOAD


def test_healthy_reader_reports_lag() -> None:
    d = decide(world(READER))
    assert d == (None, "reader on timeline 3 following w:5432, lag 100 bytes / 0.50s")


def test_a_restored_cluster_recovers_the_backup_instead_of_initdb() -> None:
    restoring = dataclasses.replace(no_data(identity=NO_CLUSTER), restore_from="backup b of s3://q/db/src")
    assert decide(restoring) == (
        Action.RESTORE_WRITER,
        "no data directory and none of the 4 storage nodes that answered knows a cluster: "
        "restoring backup b of s3://q/db/src as the new writer at term 3",
    )
    # Once its storage holds the cluster, a writer that lost its data never restores over it.
    again = dataclasses.replace(no_data(identity=CLUSTER), restore_from="backup b of s3://q/db/src")
    assert decide(again).action is None
    # Readers copy the restored writer like any other.
    reader = dataclasses.replace(no_data(READER, NO_CLUSTER), restore_from="backup b of s3://q/db/src")
    assert decide(reader).action is Action.BOOTSTRAP_READER


def test_a_paused_instance_stops_only_without_clients_and_stays_stopped() -> None:
    idle = dataclasses.replace(PRIMARY, connections=0)
    assert decide(world(paused=True, pg=idle)) == (
        Action.PAUSE,
        "pausing: no client connection, stopping PostgreSQL cleanly",
    )
    busy = dataclasses.replace(STANDBY, connections=2)
    assert decide(world(READER, paused=True, pg=busy)) == (
        None,
        "pause asked but 2 client connections are open: waiting",
    )
    stopped = world(
        paused=True, postmaster_running=False, pg=None, local=Local(DataDir.OURS, "shut down", "writer")
    )
    assert decide(stopped) == (None, "paused: PostgreSQL stopped until a client connects")
    # Resumed: the cleanly stopped writer starts again at its term (no promotion, no recovery).
    assert decide(dataclasses.replace(stopped, paused=False)) == (
        Action.START,
        "starting the cleanly stopped writer at term 3",
    )


def test_the_stall_clock_runs_while_the_receiver_is_not_usefully_streaming() -> None:
    from aurora_instance.manager import stall_clock

    stuck = dataclasses.replace(STANDBY, received_lsn=80, replayed_lsn=100, receiver_status="waiting")
    before = (stuck.timeline, stuck.replayed_lsn)
    assert stall_clock(None, before, stuck, 5.0) == 5.0
    assert stall_clock(5.0, before, stuck, 9.0) == 5.0
    # "streaming" but behind replay (a receiver restarted at its segment's start, failing): still stalled.
    flicker = dataclasses.replace(stuck, receiver_status="streaming")
    assert stall_clock(5.0, before, flicker, 12.0) == 5.0
    # Streaming and caught up with replay: an idle, healthy reader; and any replay progress resets it.
    idle = dataclasses.replace(stuck, receiver_status="streaming", received_lsn=100)
    assert stall_clock(5.0, before, idle, 13.0) is None
    assert stall_clock(5.0, (stuck.timeline, 90), stuck, 13.0) is None
    assert stall_clock(5.0, before, PRIMARY, 13.0) is None and stall_clock(5.0, before, None, 13.0) is None
