"""A Data API server on a local port, in a thread of its own (boto3 is synchronous), for integration tests
and the benchmark: the real service code, real HTTP, a real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from aurora_data_api.main import run
from aurora_data_api.service import Config

from tests.fixtures import availability

KEY, SECRET_KEY = "AKIDQUORUMDBTEST", "s3cr3t-signing-key"
CLUSTER = "demo"


def write_secret(root: Path, name: str, username: str, password: str, dbname: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    for key, value in (("username", username), ("password", password), ("dbname", dbname)):
        (folder / key).write_text(value)


def local_config(host: str, port: int, root: Path, user: str) -> Config:
    """A Data API for cluster ``demo`` over PostgreSQL at host:port, its one Secret ``demo-app`` naming
    ``user`` under ``root``; short idle and statement timeouts for tests."""
    secrets = root / "secrets"
    write_secret(secrets, "demo-app", user, "unused", "postgres")
    return Config(
        cluster=CLUSTER, host=host, port=port, keys={KEY: SECRET_KEY}, secrets_dir=secrets,
        idle_seconds=2, statement_timeout=2,
    )  # fmt: skip


@contextlib.contextmanager
def running(config: Config) -> Iterator[str]:
    """Serve ``config`` until the block ends (``aurora_data_api.main.run``); yields the endpoint URL."""
    port = availability.free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(run(config, "127.0.0.1", port, stop, ready.set),), daemon=True
    )
    thread.start()
    assert ready.wait(10)
    try:
        yield f"{'https' if config.tls_dir else 'http'}://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)


def client(endpoint: str, key: str = KEY, secret: str = SECRET_KEY, verify: str | None = None) -> object:
    import boto3  # type: ignore[import-untyped]
    import botocore.config  # type: ignore[import-untyped]

    return boto3.client(
        "rds-data", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key,
        aws_secret_access_key=secret, config=botocore.config.Config(retries={"max_attempts": 1}),
        verify=verify,
    )  # fmt: skip
