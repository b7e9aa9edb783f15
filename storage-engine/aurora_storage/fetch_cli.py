"""``quorumdb-wal-fetch %f %p``: PostgreSQL's restore_command backed by a read quorum of storage nodes.

Why it exists: a promoting or restoring instance replays WAL up to the highest flushed LSN of any three
healthy storage nodes. Exit codes follow restore_command's rules: 0 = file written, 1 = no such file
(end of WAL: recovery moves on), 126 = cannot tell (fewer than three healthy nodes, or only corrupt
copies). PostgreSQL aborts recovery on codes above 125 instead of promoting on incomplete WAL, which is
the point: it must never report "not found" when it simply could not ask a quorum.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aurora_api import contract

from aurora_storage import checksum, client, quorum

log = logging.getLogger("quorumdb-wal-fetch")

EXIT_OK = 0
EXIT_ABSENT = 1
EXIT_ABORT = 126


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="quorumdb-wal-fetch", description=__doc__)
    p.add_argument("name", help="%%f: WAL file name PostgreSQL wants")
    p.add_argument("dest", help="%%p: path to write it to")
    p.add_argument(
        "--nodes", default=None, help=f"comma-separated URLs (default ${contract.Env.STORAGE_NODES})"
    )
    p.add_argument(
        "--min-term",
        type=int,
        default=int(os.environ.get("QUORUMDB_FETCH_MIN_TERM", "0")),
        help="count only nodes already on this term (fenced from older writers)",
    )
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="quorumdb-wal-fetch: %(message)s")
    urls = a.nodes.split(",") if a.nodes else client.urls_from_env()
    if len(urls) < contract.READ_QUORUM:
        log.error("need the storage node URLs (--nodes or %s)", contract.Env.STORAGE_NODES)
        return EXIT_ABORT
    with client.StorageClient(urls) as c:
        try:
            q = c.read_quorum(min_term=a.min_term)
            ok = c.fetch(a.name, Path(a.dest), q)
        except quorum.QuorumError as err:
            log.error("%s: %s", a.name, err)
            return EXIT_ABORT
        except (client.FetchError, checksum.ChecksumError) as err:
            log.error("%s: %s", a.name, err)
            return EXIT_ABORT
    return EXIT_OK if ok else EXIT_ABSENT


if __name__ == "__main__":
    main()
