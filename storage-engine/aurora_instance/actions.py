"""Long actions that create or reshape an instance: bootstrap, start, rejoin, reload. Run in the executor.

Why: each is a fixed sequence of steps whose order matters (e.g. a new writer creates the storage slots and
the replication account before it declares its term, so storage nodes can follow it before any client
commits). Every step failure raises with the step named. Promotion and crash recovery are in ``promotion``.
It must not decide *whether* to act; ``decide`` does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from aurora_api import contract
from aurora_storage import quorum
from psycopg import sql as q

from aurora_instance import accounts, files, sql
from aurora_instance.accounts import Credentials
from aurora_instance.context import Context
from aurora_instance.postgres import PostgresError
from aurora_instance.snapshot import Intent
from aurora_instance.storage import FENCE_QUORUM

log = logging.getLogger(__name__)


class ActionError(RuntimeError):
    """An action could not complete; the message names the action and the failed step."""


class Deposed(ActionError):
    """Storage nodes hold a newer term: this instance must not act as writer."""


def writer_conninfo(ctx: Context) -> str:
    """How storage nodes reach this instance as writer (their own credentials for the replication user)."""
    s = ctx.settings
    user = ctx.creds.replication.username
    return f"host={s.advertise_host} port={s.postgres_port} user={user} dbname=postgres"


def fence(ctx: Context, term: int, follow_me: bool = True) -> None:
    """Make storage nodes refuse writers of older terms; Deposed if an answering node has a newer term.

    ``follow_me`` also names this instance as the writer to stream from (nodes stream only once it declares
    ``term`` and is out of recovery); False keeps their current writer (fencing before promotion).
    """
    result = ctx.storage.fence(term, writer_conninfo(ctx) if follow_me else None)
    if result.highest_term > term:
        raise Deposed(f"storage nodes are at term {result.highest_term} > {term}: a newer writer exists")
    if result.confirmed < FENCE_QUORUM:
        raise ActionError(
            f"fencing at term {term}: only {result.confirmed} storage nodes confirmed, need {FENCE_QUORUM}"
        )


def write_config(ctx: Context, intent: Intent, *, role: str | None = None, clients: bool = True) -> None:
    files.write_config(
        ctx.settings, ctx.creds, role=role or intent.role, term=intent.term, writer=intent.writer,
        params=ctx.params, clients=clients, token_roles=ctx.token_roles,
    )  # fmt: skip


def bootstrap_writer(ctx: Context, intent: Intent) -> str:
    """initdb (data checksums) into a side directory, accounts and storage slots, then rename into place."""
    s, su = ctx.settings, ctx.creds.superuser
    staging = s.data_root / "pgdata.new"
    shutil.rmtree(staging, ignore_errors=True)
    with tempfile.NamedTemporaryFile("w", dir=s.data_root, prefix=".pw-") as pw:
        pw.write(su.password + "\n")
        pw.flush()
        ctx.pg.run(
            "initdb of a new cluster", "initdb", "-D", str(staging), "--data-checksums", "-U", su.username,
            f"--pwfile={pw.name}", "--auth-local=trust", "--auth-host=scram-sha-256",
            "-E", "UTF8", "--locale=C",
        )  # fmt: skip
    # First start: private socket only, no quorum wait, to create accounts and storage slots.
    files.write_config(
        s, ctx.creds, role=contract.ROLE_WRITER, term=intent.term, writer=None, params=ctx.params,
        clients=False, synchronous=False, pgdata=staging,
    )  # fmt: skip
    staging_pg = dataclasses.replace(ctx.pg, pgdata=staging, proc=None)
    staging_pg.start()
    try:
        with ctx.connect() as conn:
            rep, app = ctx.creds.replication, ctx.creds.app
            conn.execute(
                q.SQL("CREATE ROLE {} LOGIN REPLICATION PASSWORD {}").format(
                    q.Identifier(rep.username), q.Literal(rep.password)
                )
            )
            conn.execute(
                q.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    q.Identifier(app.username), q.Literal(app.password)
                )
            )
            conn.execute(
                q.SQL("CREATE DATABASE {} OWNER {}").format(
                    q.Identifier(ctx.creds.app_database), q.Identifier(app.username)
                )
            )
            sql.create_storage_slots(conn)
    finally:
        staging_pg.stop("fast")
    files.write(staging / files.STAMP, s.cluster_name + "\n")
    staging.rename(s.pgdata)
    return start(ctx, intent) + " (new cluster)"


@contextlib.contextmanager
def local_wal_only(ctx: Context) -> Iterator[None]:
    """While held, restore_command answers "absent" at once, so PostgreSQL replays the WAL already in pg_wal
    (copied by pg_basebackup or pg_rewind) and then streams, instead of asking the storage quorum for every
    segment first (archive is tried before pg_wal in standby mode)."""
    ctx.settings.wal_cache.mkdir(mode=0o700, exist_ok=True)
    hold = ctx.settings.wal_hold
    hold.touch()
    try:
        yield
    finally:
        hold.unlink(missing_ok=True)


def start(ctx: Context, intent: Intent, *, local_wal: bool = False) -> str:
    if intent.role == contract.ROLE_WRITER:
        fence(ctx, intent.term)
    write_config(ctx, intent)
    if local_wal:
        with local_wal_only(ctx):
            ctx.pg.start()
    else:
        ctx.pg.start()
    files.save_state(ctx.settings, files.State(intent.role, intent.term, intent.writer))
    return f"started as {intent.role} at term {intent.term}"


def pause(ctx: Context) -> str:
    """Stop PostgreSQL cleanly (fast: no client is connected, ``decide`` checked)."""
    ctx.pg.stop("fast")
    return "paused: PostgreSQL stopped"


def _basebackup(ctx: Context, writer: str, target: Path) -> None:
    host, port = writer.rsplit(":", 1)
    ctx.pg.run(
        f"copying the writer at {writer}", "pg_basebackup", "-D", str(target), "-h", host, "-p", port,
        "-U", ctx.creds.replication.username, "-X", "stream", "-c", "fast", "-w", "--no-manifest",
    )  # fmt: skip


def check_copy(ctx: Context, writer: str, staging: Path) -> None:
    """The copy must be this cluster (our stamp) and the very PostgreSQL system the storage nodes hold: a
    writer that wrongly initdb'd a new system over an existing cluster carries our stamp but not its
    identifier, and copying it would make every table vanish from this instance too."""
    s = ctx.settings
    if files.read_stamp(staging) != s.cluster_name:
        raise ActionError(f"the writer at {writer} is not cluster {s.cluster_name!r}: copy discarded")
    expected = ctx.storage.identity().system_identifier
    if expected is None:
        return  # no node has pinned one yet (a new cluster): nothing to compare with
    staging_pg = dataclasses.replace(ctx.pg, pgdata=staging, proc=None)
    copied = staging_pg.controldata().get("Database system identifier")
    if copied != expected:
        raise ActionError(
            f"the writer at {writer} is PostgreSQL system {copied}, but the storage nodes hold system "
            f"{expected}: copy discarded"
        )


def bootstrap_reader(ctx: Context, intent: Intent) -> str:
    """Fresh copy of the writer into a side directory, checked, renamed into place only when complete."""
    if not intent.writer:
        raise ActionError("bootstrapping a reader: no writer endpoint known")
    s = ctx.settings
    staging = s.data_root / "pgdata.new"
    shutil.rmtree(staging, ignore_errors=True)
    _basebackup(ctx, intent.writer, staging)
    try:
        check_copy(ctx, intent.writer, staging)
    except (ActionError, PostgresError):
        shutil.rmtree(staging, ignore_errors=True)
        raise
    staging.chmod(0o700)
    if s.pgdata.exists():
        shutil.rmtree(s.pgdata)
    staging.rename(s.pgdata)
    files.save_state(s, files.State(contract.ROLE_READER, intent.term, intent.writer))
    return start(ctx, intent, local_wal=True) + f" (copied from {intent.writer})"


def _wait_source_promoted(ctx: Context, source: str, timeout: float = 60, quorum_wait: float = 5) -> None:
    """In a switchover the new writer may still be promoting: rewinding against it too early would miss the
    fork and leave this instance on a timeline it cannot follow. Then, for up to ``quorum_wait`` seconds,
    until WRITE_QUORUM storage nodes stream from it: the CHECKPOINT and pg_rewind that follow compete for
    the CPU with the storage nodes attaching, and its clients wait for those, not for this reader."""
    deadline = time.monotonic() + timeout
    promoted_at: float | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(source, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT pg_is_in_recovery(), (SELECT count(*) FROM pg_stat_replication "
                    "WHERE application_name = ANY(%s) AND state = 'streaming')",
                    (quorum.node_names(),),
                ).fetchone()
            if row is not None and not row[0]:
                promoted_at = promoted_at or time.monotonic()
                if int(str(row[1])) >= contract.WRITE_QUORUM or time.monotonic() - promoted_at > quorum_wait:
                    return
        except psycopg.Error as err:
            log.debug("waiting for the writer to rejoin: %s", err)
        time.sleep(0.1)
    raise ActionError(f"rejoining: {source.split()[0]} is not a writer after {timeout:.0f}s")


def rejoin(ctx: Context, intent: Intent) -> str:
    """A former writer (or a diverged reader) comes back as a reader: pg_rewind, else a fresh copy."""
    if not intent.writer:
        raise ActionError("rejoining: no writer endpoint known")
    ctx.pg.stop("fast")
    host, port = intent.writer.rsplit(":", 1)
    source = (
        f"host={host} port={port} user={ctx.creds.superuser.username} dbname=postgres "
        f"passfile={files.passfile(ctx.settings)} connect_timeout=3"
    )
    t0 = time.monotonic()
    _wait_source_promoted(ctx, source)
    try:
        subprocess.run(  # a freshly promoted source must checkpoint so pg_rewind sees its new timeline
            [str(ctx.settings.pg_bin / "psql"), "-X", "-q", "-d", source, "-c", "CHECKPOINT"],
            env=ctx.pg.env(), capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        write_config(ctx, intent, role=contract.ROLE_READER)  # restore_command for --restore-target-wal
        (ctx.settings.pgdata / "standby.signal").unlink()  # pg_rewind's single-user crash recovery refuses it
        ctx.pg.run(
            f"rewinding to follow {intent.writer}", "pg_rewind", "-D", str(ctx.settings.pgdata),
            f"--source-server={source}", "--restore-target-wal",
        )  # fmt: skip
        how = f"rewound in {time.monotonic() - t0:.1f}s"
        files.save_state(ctx.settings, files.State(contract.ROLE_READER, intent.term, intent.writer))
    except (PostgresError, subprocess.SubprocessError) as err:
        log.warning("pg_rewind could not rejoin (%s); taking a fresh copy of %s", err, intent.writer)
        return bootstrap_reader(ctx, intent) + " after pg_rewind failed"
    return start(ctx, intent, local_wal=True) + f" ({how})"


def reload(
    ctx: Context,
    intent: Intent,
    params: dict[str, str],
    token_roles: tuple[str, ...] = (),
    creds: Credentials | None = None,
) -> str:
    """Apply changed configuration without a restart: user parameters, certificates, token roles and rotated
    passwords (``creds``, as mounted now: every instance's password file for its own connections to the
    writer; on the writer also the roles themselves)."""
    ctx.params = params
    creds = creds or ctx.creds
    if creds != ctx.creds:
        files.write_passfile(ctx.settings, creds)
        ctx.creds = creds
    created: list[str] = []
    rotated: list[str] = []
    if intent.role == contract.ROLE_WRITER:
        fence(ctx, intent.term)
        with ctx.connect() as conn:
            rotated = sql.sync_passwords(conn, accounts.accounts(creds))
            if token_roles:
                created = sql.create_login_roles(conn, token_roles)
    ctx.token_roles = token_roles
    write_config(ctx, intent)
    ctx.pg.reload()
    files.save_state(ctx.settings, files.State(intent.role, intent.term, intent.writer))
    made = f", created token roles {', '.join(created)}" if created else ""
    made += f", new password for {', '.join(rotated)}" if rotated else ""
    return f"configuration reloaded ({len(params)} user parameters, term {intent.term}{made})"
