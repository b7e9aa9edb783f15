"""Entry point ``quorumdb-instance``: PID 1 of the PostgreSQL container, and the ``wal-fetch`` helper.

Why: validates everything before touching the data volume (bad Secret, foreign data directory, impossible
configuration: clear error, exit 2, nothing written), then runs the decision loop and the HTTP API, and on
SIGTERM stops PostgreSQL with a fast shutdown. It must not contain decision logic.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys

from aiohttp import web
from aurora_api import control, https

from aurora_instance import accounts, backends, files, restore_source, volumelock
from aurora_instance import settings as settings_mod
from aurora_instance.context import Context
from aurora_instance.postgres import Postgres
from aurora_instance.settings import ConfigError, Settings
from aurora_instance.snapshot import Intent

# ``restore_command`` runs ``python -m aurora_instance.walfetch`` directly: it must not pay for these imports.

log = logging.getLogger("aurora_instance")
EXIT_CONFIG = 2


def _podinfo(settings: Settings, name: str, key: str) -> str | None:
    if settings.podinfo_dir is None:
        return None
    try:
        text = (settings.podinfo_dir / name).read_text()
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        k, _, v = line.partition("=")
        if k.strip() == key:
            return v.strip().strip('"')
    return None


def initial_intent(settings: Settings) -> Intent:
    """Role and term at start-up: the newest of persisted state, pod annotation and environment."""
    from aurora_api import contract

    state = files.load_state(settings)
    raw_term = _podinfo(settings, "annotations", contract.ANNOTATION_TERM)
    try:
        term = max(settings.initial_term, int(raw_term) if raw_term else 0)
    except ValueError as err:
        raise ConfigError(
            f"pod annotation {contract.ANNOTATION_TERM}={raw_term!r} is not an integer"
        ) from err
    role = _podinfo(settings, "labels", contract.LABEL_ROLE) or settings.initial_role
    if state is not None and state.term >= term:
        return Intent(state.role, state.term, state.writer or settings.writer_endpoint)
    writer = settings.writer_endpoint if role == contract.ROLE_READER else None
    if role == contract.ROLE_READER and not writer:
        raise ConfigError("reader role without a writer endpoint")
    return Intent(role, term, writer)


def prepare() -> Context:
    """Validate the pod before anything is written; ConfigError on any bad input."""
    if os.geteuid() == 0:
        raise ConfigError("refusing to run as root: PostgreSQL must run as an unprivileged user")
    s = settings_mod.from_env()
    creds = accounts.load(s.secrets_dir)
    try:
        tokens = control.mounted(s.secrets_dir)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    files.check_data_dir(s)  # read-only: a foreign volume is refused before anything is written to it
    volumelock.hold(s.data_root)  # before anything on the volume is written; held for life
    files.check_data_dir(s)  # again: the manager this one waited for may have changed it
    params = files.user_parameters(s)
    storage = backends.storage_from_env(os.environ, tokens)
    s.data_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.rmtree(s.wal_cache, ignore_errors=True)  # a hold left by a killed manager must not outlive it
    files.write_passfile(s, creds)
    pg = Postgres(
        s.pg_bin, s.pgdata, s.socket_dir, s.postgres_port, files.passfile(s), creds.superuser.username
    )
    foreign = pg.foreign_postmaster()
    if foreign is not None:
        raise ConfigError(f"a postmaster (pid {foreign}) already runs on {s.pgdata}")
    restore = restore_source.source_from_env(os.environ)
    return Context(s, creds, pg, storage, params, restore=restore, control_tokens=tokens)


async def serve(ctx: Context) -> int:
    from aurora_storage import s3

    from aurora_instance import http
    from aurora_instance.basebackup import Backups
    from aurora_instance.manager import Manager

    manager = Manager(ctx, initial_intent(ctx.settings))
    log.info(
        "starting %s as %s at term %d", ctx.settings.instance_name, manager.intent.role, manager.intent.term
    )
    backups = Backups(ctx.settings, ctx.creds.superuser.username, s3.from_env(os.environ))
    runner = web.AppRunner(http.build(manager, backups, ctx.control_tokens), access_log=None)
    await runner.setup()
    host = "127.0.0.1" if ctx.settings.listen_address in ("", "localhost", "127.0.0.1") else "0.0.0.0"
    served = https.control_server()
    listener = served.front if served else None
    await web.TCPSite(runner, host, ctx.settings.http_port, ssl_context=listener).start()
    if served is not None:
        served.follow()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        await manager.run(stop)
    except ConfigError:
        code = EXIT_CONFIG
    finally:
        log.info("shutting down: fast shutdown of PostgreSQL")
        await asyncio.to_thread(ctx.pg.stop, "fast", 20)
        await runner.cleanup()
        await asyncio.to_thread(manager.executor.shutdown)
    return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=os.environ.get("QUORUMDB_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args[:1] == ["wal-fetch"]:
        from aurora_instance import walfetch

        return walfetch.main(args[1:])
    if args[:1] == ["archive-fetch"]:
        from aurora_instance import restore_source

        return restore_source.fetch_main(args[1:])
    if args and args[0] != "run":
        log.error("unknown command %r (expected 'run' or 'wal-fetch %%f %%p')", args[0])
        return EXIT_CONFIG
    try:
        ctx = prepare()
    except ConfigError as err:
        log.error("configuration error, nothing was changed: %s", err)
        return EXIT_CONFIG
    return asyncio.run(serve(ctx))


if __name__ == "__main__":
    sys.exit(main())
