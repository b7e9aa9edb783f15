"""Entry point ``quorumdb-data-api``: read the configuration (environment and mounted Secrets), serve.

Why it validates first: without callers' keys nobody could call it, and a missing key file is a rendering
bug that should show in the pod's status (exit 2), not as every call refused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from aurora_api import contract, https

from aurora_data_api.service import Config, DataApi, app

log = logging.getLogger("aurora_data_api")
E = contract.EnvDataApi
EXIT_CONFIG = 2


def config(env: dict[str, str]) -> Config:
    keys_dir = Path(env.get(E.KEYS_DIR) or contract.PATH_DATA_API_KEYS)
    try:
        keys = {
            (keys_dir / "accessKeyId").read_text().strip(): (keys_dir / "secretAccessKey").read_text().strip()
        }
    except FileNotFoundError as err:
        raise ValueError(f"no access keys in {keys_dir}: {err.filename} missing") from err
    return Config(
        cluster=env[contract.Env.CLUSTER_NAME],
        host=env.get(E.DATABASE_HOST) or env[contract.Env.CLUSTER_NAME],
        port=int(env.get(E.DATABASE_PORT) or contract.POSTGRES_PORT),
        keys=keys,
        secrets_dir=Path(env.get(E.SECRETS_DIR) or contract.PATH_DATA_API_SECRETS),
        idle_seconds=float(env.get(E.TRANSACTION_IDLE_SECONDS) or 180),
        ca_file=Path(env[E.DATABASE_CA_FILE]) if env.get(E.DATABASE_CA_FILE) else None,
        tls_dir=Path(env[E.TLS_DIR]) if env.get(E.TLS_DIR) else None,
    )


async def run(
    cfg: Config, listen: str | None, port: int, stop: asyncio.Event, ready: Callable[[], None] | None = None
) -> None:
    """Serve until ``stop`` is set: HTTPS with the mounted certificate when ``cfg.tls_dir`` is set."""
    served = https.load(cfg.tls_dir) if cfg.tls_dir is not None else None
    api = DataApi(cfg)
    runner = web.AppRunner(app(api), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, listen, port, ssl_context=served.front if served else None).start()
    scheme = "https" if served else "http"
    log.info("Data API for cluster %s: %s on port %d (database %s:%d)", cfg.cluster, scheme, port, cfg.host,
             cfg.port)  # fmt: skip
    if served is not None:
        served.follow()
    if ready is not None:
        ready()
    await api.expire(stop)
    await api.close()
    await runner.cleanup()


async def serve(cfg: Config, listen: str | None, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(cfg, listen, port, stop)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = config(dict(os.environ))
    except (KeyError, ValueError) as err:
        log.error("fatal: configuration: %s", err)
        sys.exit(EXIT_CONFIG)
    port = int(os.environ.get(E.PORT) or contract.DATA_API_PORT)
    try:
        asyncio.run(serve(cfg, os.environ.get(E.LISTEN) or None, port))
    except (OSError, ssl.SSLError) as err:  # the mounted certificate missing or not loading
        log.error("fatal: TLS: %s", err)
        sys.exit(EXIT_CONFIG)


if __name__ == "__main__":
    main()
