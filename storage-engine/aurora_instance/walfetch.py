"""``restore_command`` of every instance: fetch one WAL file from the storage quorum.

Why: readers fall back to the storage nodes for WAL they miss, and promotion replays the quorum's tail
through this same path (including ``.partial`` segments). PostgreSQL calls it often, so it imports little
and decides nothing: exit 0 when the file was written to ``%p``, 1 when no node has it.

A promotion must not wait for a fetch already in flight: when the writer dies, the startup process falls
back to restore_command for the segment it was streaming, and that fetch (an interpreter start, six status
reads, a 16 MiB partial) kept ``pg_promote`` waiting for seconds on a loaded node. So the fetch runs in a
thread while the main thread watches for the promotion's hold file (the optional third argument); when it
appears, the helper answers "absent" at once. That is always safe: PostgreSQL then reads its own pg_wal,
and promotion has already cached what it needs from the quorum.

With ``--archive`` (a reader of a cluster with an object store), a segment older than everything the storage
nodes hold (a reader seeded from a base backup older than the quorum's retention, or one that fell that far
behind) comes from the cluster's own archive, inside the same abandonable fetch; any failure of the store is
only "absent". The newest segment (the one a reader asks for every 200 ms while the writer is down) never
goes to the store: that would only slow a failover.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("aurora_instance.walfetch")
POLL_SECONDS = 0.05


def fetch_unless(fetch: Callable[[], bool], abandon: Path | None, poll: float = POLL_SECONDS) -> bool | None:
    """Run ``fetch`` in a daemon thread; its result, or None as soon as ``abandon`` exists (the thread is
    left behind: the caller exits). A failing fetch counts as "absent"."""
    result: list[bool] = []

    def run() -> None:
        try:
            result.append(fetch())
        except Exception as err:  # restore_command must answer, never hang or trace
            log.warning("wal-fetch: %s", err)
            result.append(False)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(poll)
        if worker.is_alive() and abandon is not None and abandon.exists():
            return None
    return result[0]


def main(argv: list[str]) -> int:
    archive = argv[:1] == ["--archive"]
    argv = argv[1:] if archive else argv
    if len(argv) not in (2, 3):
        print("usage: quorumdb-instance wal-fetch [--archive] %f %p [abandon-when-this-file-exists]",
              file=sys.stderr)  # fmt: skip
        return 2
    name, dest = argv[:2]
    abandon = Path(argv[2]) if len(argv) == 3 else None
    # Imported after the usage check: they are most of the start-up time.
    from aurora_storage import client

    from aurora_instance import backends

    def fetch() -> bool:
        quorum = backends.storage_from_env(os.environ)
        if quorum.fetch(name, Path(dest)):
            return True
        if not archive or not quorum.trimmed(name):
            return False
        from aurora_instance import restore_source

        own = restore_source.own_from_env(os.environ)
        return own is not None and restore_source.fetch_wal(own, name, Path(dest))

    found = fetch_unless(fetch, abandon)
    if found is None:
        log.warning("wal-fetch %s: abandoned, a promotion started", name)
        client.temp_path(Path(dest)).unlink(missing_ok=True)
    return 0 if found else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="quorumdb wal-fetch: %(message)s")
    code = main(sys.argv[1:])
    sys.stderr.flush()
    # os._exit: an abandoned fetch thread, or the quorum read's straggling status requests, must not hold
    # the answer back (interpreter shutdown joins worker threads).
    os._exit(code)
