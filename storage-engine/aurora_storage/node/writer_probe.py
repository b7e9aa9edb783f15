"""Ask the writer who it is: system identifier, declared term, recovery state, flush positions.

Why it exists: before a node (re)starts its receiver it must know that the server at the configured
address is the writer of the node's term in the node's cluster (``fencing.decide``); while streaming it
keeps watching, for lag and for the durable (4th-highest) flush position. One short query on an ordinary
connection; it must not stream WAL or change anything on the writer.
"""

from __future__ import annotations

import time

import psycopg
from aurora_api import contract

from aurora_storage import fencing, quorum
from aurora_storage import lsn as lsnmod
from aurora_storage.node import runtime

_FACTS = f"""
SELECT (SELECT system_identifier::text FROM pg_control_system()),
       current_setting('{contract.WRITER_TERM_GUC}', true),
       current_setting('{contract.WRITER_CLUSTER_GUC}', true),
       pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_flush_lsn()::text END
"""
_REPLICATION = """
SELECT application_name, flush_lsn::text FROM pg_stat_replication
 WHERE application_name LIKE %s AND state = 'streaming'
"""


class ProbeError(RuntimeError):
    """The writer could not be asked (connection refused, timeout, query failure)."""


def _term(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


async def _query(
    conn: psycopg.AsyncConnection[tuple[object, ...]],
) -> tuple[fencing.WriterFacts, runtime.WriterWatch]:
    cur = await conn.execute(_FACTS)
    row = await cur.fetchone()
    assert row is not None
    sysid, term_s, cluster, in_recovery, flush = row
    flushes: dict[str, int | None] = {}
    if not in_recovery:
        cur = await conn.execute(_REPLICATION, (contract.STORAGE_SLOT_PREFIX.replace("_", r"\_") + "%",))
        for app, lsn_text in await cur.fetchall():
            flushes[str(app)] = lsnmod.parse_lsn(str(lsn_text)) if lsn_text else None
    facts = fencing.WriterFacts(
        str(sysid),
        _term(str(term_s) if term_s is not None else None),
        bool(in_recovery),
        str(cluster) if cluster else None,
    )
    watch = runtime.WriterWatch(
        reachable=True,
        term=facts.term,
        system_identifier=facts.system_identifier,
        flush_lsn=lsnmod.parse_lsn(str(flush)) if flush else None,
        storage_flush=flushes,
        streaming_nodes=len(flushes),
        durable_lsn=quorum.durable_lsn(flushes.values()),
        observed_at=time.time(),
    )
    return facts, watch


async def _connect(conninfo: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    return await psycopg.AsyncConnection.connect(
        conninfo, connect_timeout=3, autocommit=True, application_name="quorumdb-storage-probe"
    )


def _error(conninfo: str, err: Exception) -> ProbeError:
    return ProbeError(f"cannot query writer ({conninfo.split('password')[0]}): {err}")


class Watcher:
    """Repeated probes over one kept connection: the once-a-second watch, and the checks before streaming
    (every 20 ms while a writer promotes), cost the writer no forks and no authentication each."""

    def __init__(self) -> None:
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._conninfo: str | None = None

    async def sample(self, conninfo: str) -> tuple[fencing.WriterFacts, runtime.WriterWatch]:
        try:
            if self._conn is None or self._conn.closed or conninfo != self._conninfo:
                await self.close()
                self._conn = await _connect(conninfo)
                self._conninfo = conninfo
            return await _query(self._conn)
        except (psycopg.Error, OSError) as err:
            await self.close()
            raise _error(conninfo, err) from err

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
