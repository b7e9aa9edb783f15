"""The decision loop: observe -> decide -> (maybe) start an action -> log one sentence. Repeat.

Why: Patroni's ``_run_cycle`` shape. Each cycle reads the world once into an immutable ``World`` (blocking
reads run in a thread), calls the pure ``decide``, hands a long action to the executor and logs the
sentence. HTTP requests only change the ``Intent`` (persisted first) and wake the loop. The storage nodes
are asked who the cluster is only while there is no data directory, not every second of a healthy life. It
must not contain decision rules.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from aurora_api import contract, reports
from aurora_storage import lsn

from aurora_instance import (
    accounts,
    actions,
    decide,
    files,
    load,
    promotion,
    restore,
    restore_source,
    seed,
    sql,
    tls,
)
from aurora_instance.context import Context
from aurora_instance.decide import Action
from aurora_instance.executor import Executor
from aurora_instance.postgres import PostgresError
from aurora_instance.settings import ConfigError
from aurora_instance.snapshot import DataDir, Intent, Local, World

log = logging.getLogger(__name__)
CYCLE_SECONDS = 1.0
RETRY_AFTER_FAILURE_SECONDS = 2.0
READY_LAG_BYTES = 1024 * 1024


def fmt(value: int | None) -> str | None:
    return None if value is None else lsn.format_lsn(value)


def _data_dir_key(pgdata: Path) -> tuple[int, int, int] | None:
    """Tells one data directory from its replacement (a fresh copy renamed into place); None if absent."""
    try:
        st = (pgdata / "PG_VERSION").stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns


def stall_clock(
    since: float | None, before: tuple[int | None, int | None], obs: sql.PgObservation | None, now: float
) -> float | None:
    """When a reader's stall began (None: not stalled): replay has not moved since ``before`` and the WAL
    receiver is not streaming usefully. A receiver counts as streaming only once it has received at least
    what was replayed: one that reconnects to a new writer and restarts at its segment's start, then fails
    to get WAL of the old timeline the writer no longer has, shows "streaming" between failures with its
    received position behind replay, and must not keep the reader from rejoining. An idle reader streams
    with nothing new to replay and never starts the clock; any replay progress resets it."""
    if obs is None or not obs.in_recovery or (obs.timeline, obs.replayed_lsn) != before:
        return None
    caught_up = (obs.received_lsn or 0) >= (obs.replayed_lsn or 0)
    if obs.receiver_status == "streaming" and caught_up:
        return None
    return since or now


class Manager:
    def __init__(self, ctx: Context, intent: Intent) -> None:
        self.ctx = ctx
        self.intent = intent
        self.executor = Executor(self._wake_threadsafe)
        self.world: World | None = None
        self.last_decision = "starting"
        self.last_cycle = time.monotonic()
        self.config_error: str | None = None
        self._stalled_since: float | None = None
        self._progress: tuple[int | None, int | None] = (None, None)
        # (which data directory, its system identifier): the identifier never changes for a data directory,
        # which is told apart by PG_VERSION's (device, inode, mtime) since actions may replace it wholesale.
        self._system: tuple[tuple[int, int, int], str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self.paused = files.load_paused(ctx.settings)
        self.wakes = 0
        self.object_store = restore_source.own_from_env(os.environ) is not None
        self._verified: dict[tuple[str, str], bool] = {}  # (stored verifier, password) -> they match

    @property
    def _account_names(self) -> tuple[str, ...]:
        return tuple(a.username for a in accounts.accounts(self.ctx.creds))

    def _stale_passwords(self, verifiers: tuple[tuple[str, str | None], ...]) -> bool:
        """Whether a role stores another password than its mounted Secret (rotated, or rotated while no writer
        ran). PBKDF2 is slow by design: each (verifier, password) pair is checked once, not every cycle."""
        passwords = {a.username: a.password for a in accounts.accounts(self.ctx.creds)}
        verified = {}  # only the current pairs are kept
        for role, verifier in verifiers:
            key = (verifier or "", passwords[role])
            known = self._verified.get(key)
            verified[key] = known if known is not None else accounts.scram_matches(key[0], key[1])
        self._verified = verified
        return not all(verified.values())

    # --- intent (changed by HTTP) ---------------------------------------------------------------------
    def set_intent(self, intent: Intent) -> None:
        """A new role or term also ends a pause: the control plane wants the instance running."""
        if self.paused:
            files.save_paused(self.ctx.settings, False)
            self.paused = False
        files.save_state(self.ctx.settings, files.State(intent.role, intent.term, intent.writer))
        log.info("intent changed: %s at term %d (writer %s)", intent.role, intent.term, intent.writer)
        self.intent = intent
        self._stalled_since = None
        self._wake.set()

    def pause(self, wakes: int) -> bool:
        """Pause unless a client woke the instance after the caller judged it idle (``wakes`` moved on)."""
        if wakes != self.wakes:
            return False
        if not self.paused:
            files.save_paused(self.ctx.settings, True)
            log.info("pause asked: PostgreSQL stops once no client is connected")
            self.paused = True
            self._wake.set()
        return True

    def resume(self) -> None:
        """Count a wake; start PostgreSQL again if paused (persisted first, like an intent)."""
        self.wakes += 1
        if self.paused:
            files.save_paused(self.ctx.settings, False)
            log.info("resume asked: starting PostgreSQL")
            self.paused = False
            self._wake.set()

    def _wake_threadsafe(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    # --- observe ---------------------------------------------------------------------------------------
    def observe(self) -> World:
        s, pg = self.ctx.settings, self.ctx.pg
        data_key = _data_dir_key(s.pgdata)  # identity was checked at start-up
        has_data = data_key is not None
        running = pg.running()
        idle = self.executor.running is None
        obs: sql.PgObservation | None = None
        cluster_state: str | None = None
        copy = False
        system: str | None = None
        if running:
            try:
                with self.ctx.connect(timeout=2) as conn:
                    obs = sql.observe(conn, self.ctx.creds.replication.username, self._account_names)
                system = obs.system_identifier
                if obs.receiver_status is not None and obs.timeline is not None and pg.proc is not None:
                    self.ctx.receiver_timeline = (pg.proc.pid, obs.timeline)
            except Exception as err:  # starting up, shutting down, or overloaded: retry next cycle
                log.debug("observation failed: %s", err)
        elif has_data and idle:
            try:
                control = pg.controldata()
                cluster_state = control.get("Database cluster state")
                system = control.get("Database system identifier")
                # A base backup not yet consistent: never started (backup_label), or started and stopped
                # before its end-of-backup point (pg_control keeps the backup's start until then).
                started_copy = control.get("Backup start location", "0/0") != "0/0"
                copy = started_copy or (s.pgdata / "backup_label").exists()
            except PostgresError as err:
                log.warning("%s", err)
        if data_key is None:
            self._system = None
        elif system and (self._system is None or self._system[0] != data_key):
            self._system = (data_key, system)
        identity = self.ctx.storage.identity() if not has_data and idle else None
        state = files.load_state(s)
        now = time.monotonic()
        progress = (obs.timeline, obs.replayed_lsn) if obs is not None else (None, None)
        self._stalled_since = stall_clock(self._stalled_since, self._progress, obs, now)
        self._progress = progress
        try:
            changed = (
                files.user_parameters(s) != self.ctx.params
                or files.token_roles(s) != self.ctx.token_roles
                or not tls.up_to_date(s)
                or accounts.load(s.secrets_dir) != self.ctx.creds
                or (obs is not None and self._stale_passwords(obs.verifiers))
            )
            self.config_error = None
        except ConfigError as err:
            changed, self.config_error = False, str(err)
        failed_recently = (
            self.executor.failed_at is not None
            and now - self.executor.failed_at < RETRY_AFTER_FAILURE_SECONDS
        )
        return World(
            intent=self.intent,
            local=Local(
                data=DataDir.OURS if has_data else DataDir.MISSING,
                cluster_state=cluster_state,
                last_role=state.role if state else None,
                copy=copy,
            ),
            postmaster_running=running,
            pg=obs,
            user_config_changed=changed,
            action=self.executor.running or ("backing off after a failure" if failed_recently else None),
            last_failure=self.executor.last_failure,
            stalled_seconds=now - self._stalled_since if self._stalled_since else 0.0,
            storage_identity=identity,
            restore_from=self.ctx.restore.describe() if self.ctx.restore is not None else None,
            object_store=self.object_store,
            paused=self.paused,
        )

    # --- act -------------------------------------------------------------------------------------------
    def _runner(self, action: Action, intent: Intent) -> Callable[[], str]:
        ctx = self.ctx
        table: dict[Action, Callable[[], str]] = {
            Action.BOOTSTRAP_WRITER: lambda: actions.bootstrap_writer(ctx, intent),
            Action.RESTORE_WRITER: lambda: restore.restore_writer(ctx, intent),
            Action.SEED_WRITER: lambda: seed.seed_writer(ctx, intent),
            Action.PROMOTE_COPY: lambda: seed.promote_copy(ctx, intent),
            Action.BOOTSTRAP_READER: lambda: seed.bootstrap_reader(ctx, intent),
            Action.START: lambda: actions.start(ctx, intent),
            Action.RECOVER_WRITER: lambda: promotion.recover_writer(ctx, intent),
            Action.PROMOTE: lambda: promotion.promote(ctx, intent),
            Action.REJOIN: lambda: actions.rejoin(ctx, intent),
            Action.RELOAD: lambda: actions.reload(
                ctx,
                intent,
                files.user_parameters(ctx.settings),
                files.token_roles(ctx.settings),
                accounts.load(ctx.settings.secrets_dir),
            ),
            Action.PAUSE: lambda: actions.pause(ctx),
        }
        return table[action]

    def cycle(self) -> decide.Decision:
        world = self.observe()
        self.world = world
        decision = decide.decide(world)
        if decision.action is not None:
            self.executor.submit(
                decision.action.value, self._runner(decision.action, world.intent), time.monotonic()
            )
        if decision.sentence != self.last_decision or decision.action is not None:
            log.info("%s", decision.sentence)
        else:
            log.debug("%s", decision.sentence)
        self.last_decision = decision.sentence
        self.last_cycle = time.monotonic()
        return decision

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._wake.clear()
            try:
                await asyncio.to_thread(self.cycle)
            except ConfigError as err:
                log.error("fatal: %s", err)
                raise
            except Exception:
                log.exception("decision cycle failed; retrying")
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            _, pending = await asyncio.wait(
                waiters, timeout=CYCLE_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            for w in pending:
                w.cancel()

    # --- report ----------------------------------------------------------------------------------------
    def status(self) -> reports.InstanceReport:
        w, pg = self.world, self.world.pg if self.world else None
        role: reports.Role = "unknown" if pg is None else ("reader" if pg.in_recovery else "writer")
        intent = self.intent
        return reports.InstanceReport(
            role=role,
            timeline=pg.timeline if pg else None,
            term=intent.term,
            received_lsn=fmt(pg.received_lsn) if pg else None,
            replayed_lsn=fmt(pg.replayed_lsn) if pg else None,
            flushed_lsn=fmt(pg.flushed_lsn) if pg else None,
            lag_bytes=pg.lag_bytes if pg else None,
            lag_seconds=pg.lag_seconds if pg else None,
            healthy=self.healthy(),
            ready=self.ready(),
            postgres_version=pg.version if pg else None,
            pending_restart=list(pg.pending_restart) if pg else [],
            last_decision=self.last_decision,
            action=self.executor.running,
            intent=reports.Intent(role=intent.role, term=intent.term, writer=intent.writer),
            last_failure=self.executor.last_failure,
            last_result=self.executor.last_result,
            config_error=self.config_error,
            postmaster_running=w.postmaster_running if w else False,
            system_identifier=self.system_identifier(),
            data_present=(self.ctx.settings.pgdata / "PG_VERSION").exists(),
            seed_needed=decide.seed_needed(w) if w else False,
            load=load.read(self.ctx.settings.cgroup_root, pg.connections if pg else None),
            paused=self.paused,
            wakes=self.wakes,
        )

    def system_identifier(self) -> str | None:
        """The data directory's PostgreSQL system identifier, if it is (still) the one last observed."""
        cached = self._system
        if cached is None or cached[0] != _data_dir_key(self.ctx.settings.pgdata):
            return None
        return cached[1]

    def switch_wal(self) -> str | None:
        """Close the writer's current WAL segment (``pg_switch_wal``) so that it is sealed and archived now,
        not after ``archive_timeout``; the switch LSN, or None when this instance is not a ready writer."""
        if not self.ready() or self.intent.role != contract.ROLE_WRITER:
            return None
        with self.ctx.connect(timeout=5) as conn:
            row = conn.execute("SELECT pg_switch_wal()::text").fetchone()
        return str(row[0]) if row is not None else None

    def healthy(self) -> bool:
        return time.monotonic() - self.last_cycle < 30

    def ready(self) -> bool:
        w = self.world
        if w is None or w.pg is None or self.executor.running is not None or self.paused:
            return False
        pg = w.pg
        if self.intent.role == contract.ROLE_WRITER:
            return not pg.in_recovery and pg.declared_term == self.intent.term
        lag, lag_bytes = pg.lag_seconds, pg.lag_bytes
        # lag_seconds is "now - last replayed commit": on a quiet writer a non-commit record makes it look
        # old, so a reader within READY_LAG_BYTES of what it received counts as current.
        within = (lag is not None and lag <= self.ctx.settings.reader_max_lag_seconds) or (
            lag_bytes is not None and lag_bytes <= READY_LAG_BYTES
        )
        return pg.in_recovery and pg.receiver_status == "streaming" and within
