"""``quorumdb-operator``: run the kopf operator with QuorumDB's handlers and one-active-replica peering.

Why peering with a start-time priority: during a rolling upgrade of the operator Deployment the newest replica
takes over and the old one pauses (kopf pauses lower-priority peers), so two operators never act at once.
"""

from __future__ import annotations

import logging
import time

import kopf

from . import handlers
from .settings import Settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for chatty in ("httpx", "httpx2", "aiohttp.access"):  # per-request lines drown the operator's own log
        logging.getLogger(chatty).setLevel(logging.WARNING)
    settings = Settings.from_env()
    logging.getLogger(__name__).info(
        "quorumdb-operator starting: image=%s namespace=%s peering=%s handlers=%s",
        settings.image, settings.watch_namespace or "<all>", settings.peering, handlers.__name__,
    )  # fmt: skip
    namespaces = [settings.watch_namespace] if settings.watch_namespace else []
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        peering_name=settings.peering,
        priority=int(time.time() * 1000),  # newest wins; ms so two replicas never tie
        liveness_endpoint="http://0.0.0.0:8080/healthz",
    )


if __name__ == "__main__":
    main()
