"""Entry point ``quorumdb-storage-node``: wire the store, receiver, API and background loops together.

Why it exists: one place that starts every task of a node and stops them together. It must not contain
logic of its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from aurora_api import https

from aurora_storage.node import (
    api,
    archiver,
    config,
    housekeeping,
    receiver,
    repair,
    runtime,
    state,
    store,
)

log = logging.getLogger(__name__)


async def serve(cfg: config.NodeConfig, passfile: Path | None = None, writer_ca: str | None = None) -> None:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    state_file = state.StateFile(cfg.data_dir / "state.json")
    rt = runtime.Runtime(
        cfg=cfg, store=store.WalStore(cfg.data_dir), state_file=state_file, state=state_file.load()
    )
    if rt.state.writer is None and cfg.writer_conninfo:
        rt.state = rt.state.with_term(rt.state.term, cfg.writer_conninfo, None)
    rx = receiver.Receiver(rt)
    runner = web.AppRunner(api.make_app(rt, rx, cfg.control_tokens), access_log=None)
    await runner.setup()
    served = https.control_server()
    await web.TCPSite(runner, cfg.listen, cfg.port, ssl_context=served.front if served else None).start()
    log.info(
        "%s listening on %s:%s, data %s, term %s", cfg.name, cfg.listen, cfg.port, cfg.data_dir, rt.state.term
    )
    tasks = [
        asyncio.create_task(rx.run(), name="receiver"),
        asyncio.create_task(receiver.watch_writer(rt, rx), name="writer-watch"),
        asyncio.create_task(housekeeping.seal(rt), name="seal"),
        asyncio.create_task(housekeeping.retain(rt), name="retention"),
        asyncio.create_task(housekeeping.scrub(rt), name="scrub"),
        asyncio.create_task(housekeeping.adopt_term(rt), name="adopt-term"),
    ]
    if served is not None:
        served.follow()
    if passfile is not None:
        account = config.secrets_account(os.environ)
        tasks.append(asyncio.create_task(housekeeping.follow_passfile(account, passfile), name="passfile"))
    if writer_ca is not None:
        follow = housekeeping.follow_writer_ca(os.environ, writer_ca)
        tasks.append(asyncio.create_task(follow, name="writer-ca"))
    # The S3 client takes a few hundred milliseconds to build (botocore's service models): not before the
    # API answers and the receiver may start, which a wiped node's repair waits for anyway.
    archive = None
    if cfg.s3 is not None:
        archive = await asyncio.to_thread(cfg.s3.archive)
    tasks.append(asyncio.create_task(repair.run(rt, archive), name="repair"))
    if archive is not None:
        tasks.append(asyncio.create_task(archiver.run(rt, archive), name="archiver"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    done_task = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, done_task], return_when=asyncio.FIRST_COMPLETED)
    for t in done:
        if t is not done_task and t.exception() is not None:
            log.error("task %s died", t.get_name(), exc_info=t.exception())
    await rx.fence()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=config.log_level(argv),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    cfg = config.from_args(argv)
    passfile = config.install_passfile(os.environ, cfg.data_dir)
    writer_ca = config.verify_writer(os.environ)
    if writer_ca is not None:
        log.info("connections to the writer: sslmode=%s", os.environ["PGSSLMODE"])
    asyncio.run(serve(cfg, passfile, writer_ca))


if __name__ == "__main__":
    main()
