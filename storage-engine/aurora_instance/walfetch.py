"""``restore_command`` of every instance: fetch one WAL file from the storage quorum.

Why: readers fall back to the storage nodes for WAL they miss, and promotion replays the quorum's tail
through this same path (including ``.partial`` segments). PostgreSQL calls it often, so it imports little
and decides nothing: exit 0 when the file was written to ``%p``, 1 when no node has it.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from aurora_instance import backends

log = logging.getLogger("aurora_instance.walfetch")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: quorumdb-instance wal-fetch %f %p", file=sys.stderr)
        return 2
    name, dest = argv
    try:
        storage = backends.storage_from_env(os.environ)
        found = storage.fetch(name, Path(dest))
    except Exception as err:  # restore_command must answer, never hang or trace
        log.warning("wal-fetch %s: %s", name, err)
        return 1
    return 0 if found else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="quorumdb wal-fetch: %(message)s")
    sys.exit(main(sys.argv[1:]))
