"""Supervise the node's WAL receiver process, fenced by term.

Why it exists: the receiver (``quorumdb-walrecv``, or ``pg_receivewal --synchronous`` as the baseline)
fsyncs, then reports its flush position, which is what ``ANY 4`` counts; it is a separate C process so
that nothing in Python sits between the socket and the flush. This module decides when it may run — only
against the writer of the node's current term in the node's cluster (``fencing.decide``) — restarts it
with backoff, kills it the moment the term changes, before the term update is acknowledged, and turns
its "completed <file>" reports into ``rt.wal_changed``. It must not write WAL files itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import time

from aurora_storage import fencing
from aurora_storage import lsn as lsnmod
from aurora_storage.node import runtime, writer_probe

log = logging.getLogger(__name__)
# While refusing to stream, how long at most between re-checks of the writer; a re-check is one query on
# a kept probe connection.
RECHECK_MAX_S = 0.25
# While the writer of the node's own term is still in recovery (it is promoting), the re-check interval. A
# promoted writer needs four nodes before its first commit, so every node must notice the end of its
# recovery at once: waiting up to RECHECK_MAX_S plus a new connection's authentication was up to 0.6 s of
# a switchover's write outage.
PROMOTING_POLL_S = 0.02
PROBE_TIMEOUT_S = 3.0

_PR_SET_PDEATHSIG = 1
# pg_receivewal --verbose, when it renamed a completed segment.
_COMPLETED_PG_RECEIVEWAL = "finished segment at"
# pg_receivewal's messages when the writer no longer has the WAL the node's slot asked for.
_SLOT_LOST = ("has already been removed", "has been invalidated")


def slot_lost(error: str | None, slot: str) -> bool:
    """Whether pg_receivewal's last error means the writer cannot serve this node's slot any more."""
    text = error or ""
    if f'replication slot "{slot}" does not exist' in text:
        return True
    return any(marker in text for marker in _SLOT_LOST)


def _die_with_parent() -> None:
    """Child side: get SIGKILL when the node process dies, so a killed node never leaves a receiver acking."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Receiver:
    def __init__(self, rt: runtime.Runtime) -> None:
        self.rt = rt
        self._proc: asyncio.subprocess.Process | None = None
        self._held: list[str] = []
        self._probe = writer_probe.Watcher()
        """Checks before streaming, on one kept connection while they repeat (a writer promoting)."""

    async def fence(self) -> None:
        """Kill the receiver now and wait until it is gone (no further acknowledgement can leave)."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            log.warning("receiver pid %s killed (fencing)", proc.pid)

    def _command(self, conninfo: str) -> list[str]:
        cfg = self.rt.cfg
        if cfg.receiver == "walrecv":
            return [
                str(cfg.walrecv_bin),
                f"--slot={cfg.name}",
                "--verbose",
                f"--status-interval={cfg.status_interval_s}",
                f"--linger-us={cfg.linger_us}",
                f"--parent-pid={os.getpid()}",
                "--directory",
                str(self.rt.store.wal),
                "--superseded-dir",
                str(self.rt.store.quarantine),
                "--dbname",
                f"{conninfo} application_name={cfg.name}",
            ]
        return [
            str(cfg.pg_bin_dir / "pg_receivewal"),
            "--synchronous",
            f"--slot={cfg.name}",
            "--no-loop",
            "--verbose",
            f"--status-interval={cfg.status_interval_s}",
            "--directory",
            str(self.rt.store.wal),
            "--dbname",
            f"{conninfo} application_name={cfg.name}",
        ]

    async def _check(self) -> tuple[fencing.Decision, bool]:
        """Whether to stream from the configured writer, and whether it is the node's term's writer still
        promoting (then the next check comes soon)."""
        st = self.rt.state
        if not st.writer:
            return fencing.Decision(False, "no writer configured"), False
        try:
            facts, watch = await asyncio.wait_for(self._probe.sample(st.writer), PROBE_TIMEOUT_S)
        except (writer_probe.ProbeError, TimeoutError) as err:
            await self._probe.close()
            self.rt.writer.reachable = False
            self.rt.writer.error = str(err) or f"no answer within {PROBE_TIMEOUT_S}s"
            return fencing.Decision(False, self.rt.writer.error), False
        self.rt.writer = watch
        decision = fencing.decide(st.term, st.system_identifier, self.rt.cfg.cluster_name, facts)
        return decision, facts.in_recovery and facts.term == st.term

    async def _wait_for_news(self, timeout: float) -> None:
        """Until the term changes, the writer re-declares it, or ``timeout``."""
        waits = [asyncio.create_task(e.wait()) for e in (self.rt.term_changed, self.rt.recheck)]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _check_unless_news(self) -> tuple[fencing.Decision, bool]:
        """``_check``, abandoned when the term changes meanwhile: a probe of a writer that just died waits
        for its connect timeout (seconds), and the new writer must not wait behind it."""
        probe = asyncio.create_task(self._check())
        news = asyncio.create_task(self.rt.term_changed.wait())
        try:
            await asyncio.wait({probe, news}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            news.cancel()
        if probe.done():
            return probe.result()
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
        await self._probe.close()  # the connection may be half-way through a query
        return fencing.Decision(False, "the term changed while probing the writer"), False

    async def run(self) -> None:
        backoff = 0.2
        while True:
            self.rt.term_changed.clear()
            self.rt.recheck.clear()
            decision, promoting = await self._check_unless_news()
            if self.rt.term_changed.is_set():
                backoff = 0.2
                continue
            repeated = decision.reason == self.rt.decision
            self.rt.decision = decision.reason
            if not decision.stream:
                if not repeated:  # re-checks run every RECHECK_MAX_S: log changes, not each one
                    log.info("not streaming: %s", decision.reason)
                await self._wait_for_news(PROMOTING_POLL_S if promoting else backoff)
                backoff = min(backoff * 2, RECHECK_MAX_S)
                continue
            await self._probe.close()  # the receiver's own connection takes over; none is left idle
            if self.rt.state.system_identifier is None and self.rt.writer.system_identifier:
                async with self.rt.term_lock:
                    self.rt.state = self.rt.state.with_term(
                        self.rt.state.term, None, self.rt.writer.system_identifier
                    )
                    await asyncio.to_thread(self.rt.state_file.save, self.rt.state)
            started = time.monotonic()
            fenced_by_term = await self._stream(self.rt.state.writer or "")
            if slot_lost(self.rt.last_receiver_error, self.rt.cfg.name):
                await self._reseed(self.rt.state.writer or "")
            if fenced_by_term:
                # A new term is a new writer (or the same one re-declared): check it at once. Backing off
                # here is what kept a promoted writer waiting seconds for its quorum.
                backoff = 0.2
                continue
            backoff = 0.2 if time.monotonic() - started > 10 else min(backoff * 2, 5.0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.rt.term_changed.wait(), timeout=backoff)

    async def _stream(self, conninfo: str) -> bool:
        """Run the receiver until it exits or the term changes; True when a term change stopped it."""
        term = self.rt.state.term
        # quorumdb-walrecv arms PR_SET_PDEATHSIG itself (--parent-pid), which spares a preexec_fn: without
        # one Python can spawn with vfork, faster at the moment that matters (a failover's restart).
        proc = await asyncio.create_subprocess_exec(
            *self._command(conninfo),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=None if self.rt.cfg.receiver == "walrecv" else _die_with_parent,
        )
        self._proc = proc
        self.rt.receiver_pid = proc.pid
        self.rt.receiver_since = time.time()
        self.rt.counters.receiver_starts += 1
        log.info("receiver pid %s started at term %s", proc.pid, term)
        releaser = asyncio.create_task(self._release_held())
        tail: list[str] = []
        assert proc.stderr is not None and proc.stdout is not None
        reader = asyncio.create_task(self._drain(proc.stderr, tail))
        reports = asyncio.create_task(self._reports(proc.stdout))
        waiter = asyncio.create_task(proc.wait())
        fenced = asyncio.create_task(self.rt.term_changed.wait())
        try:
            await asyncio.wait({waiter, fenced}, return_when=asyncio.FIRST_COMPLETED)
            fenced_by_term = fenced.done()
            if not waiter.done():
                await self.fence()
        finally:
            fenced.cancel()
            await waiter
            await reader
            await reports
            self._proc = None
            self.rt.receiver_pid = None
            releaser.cancel()
        self.rt.last_receiver_error = " | ".join(tail[-3:]) or None
        log.warning(
            "receiver pid %s exited rc=%s: %s", proc.pid, proc.returncode, self.rt.last_receiver_error
        )
        return fenced_by_term

    async def _reseed(self, conninfo: str) -> None:
        """The writer dropped WAL this node still needed (slot invalidated by ``max_slot_wal_keep_size``).

        Re-create the slot (reserving WAL from now), hold local files aside so that pg_receivewal starts
        at the slot's position, and put the older ones back once the new stream has begun; repair then
        fills the hole from peers and the archive. The node reports ``repairing`` meanwhile.
        """
        cfg = self.rt.cfg
        log.error("slot %s lost its WAL on the writer; re-seeding from the current position", cfg.name)
        self.rt.repair.invalidate()
        held = await asyncio.to_thread(self.rt.store.hold_all)
        dsn = f"{conninfo} application_name={cfg.name}"
        for action in ("--drop-slot", "--create-slot"):
            proc = await asyncio.create_subprocess_exec(
                str(cfg.pg_bin_dir / "pg_receivewal"),
                action,
                f"--slot={cfg.name}",
                "--dbname",
                dsn,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await proc.communicate()
            log.warning(
                "pg_receivewal %s %s: rc=%s %s", action, cfg.name, proc.returncode, err.decode().strip()
            )
        self._held = held

    async def _release_held(self) -> None:
        """Once the re-seeded stream wrote its first file, return the held files older than it."""
        while self._held:
            names = await asyncio.to_thread(self.rt.store.names)
            segs = [n for n in names if n.kind is not lsnmod.WalKind.HISTORY]
            if segs:
                await asyncio.to_thread(self.rt.store.release_held, min(n.segno for n in segs))
                self._held = []
                return
            await asyncio.sleep(0.2)

    async def _drain(self, stream: asyncio.StreamReader, tail: list[str]) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            tail.append(text)
            del tail[:-20]
            log.info("receiver: %s", text)
            if _COMPLETED_PG_RECEIVEWAL in text:  # the baseline receiver has no stdout reports
                self.rt.wal_changed.notify()

    async def _reports(self, stream: asyncio.StreamReader) -> None:
        """quorumdb-walrecv prints ``completed <file>`` for each finished segment or history file."""
        while line := await stream.readline():
            if line.startswith(b"completed "):
                self.rt.wal_changed.notify()


async def watch_writer(rt: runtime.Runtime, receiver: Receiver, interval: float = 1.0) -> None:
    """Refresh writer facts for lag/durability metrics; fence if the writer's term no longer matches."""
    watcher = writer_probe.Watcher()
    while True:
        await asyncio.sleep(interval)
        if not rt.state.writer:
            continue
        try:
            facts, watch = await asyncio.wait_for(watcher.sample(rt.state.writer), timeout=5)
        except (writer_probe.ProbeError, TimeoutError) as err:
            await watcher.close()
            rt.writer.reachable = False
            rt.writer.error = str(err)
            continue
        rt.writer = watch
        if rt.streaming:
            d = fencing.decide(rt.state.term, rt.state.system_identifier, rt.cfg.cluster_name, facts)
            if not d.stream:
                log.warning("fencing running receiver: %s", d.reason)
                rt.decision = d.reason
                await receiver.fence()
