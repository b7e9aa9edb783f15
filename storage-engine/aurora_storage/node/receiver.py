"""Supervise ``pg_receivewal --synchronous`` as the node's WAL receiver, fenced by term.

Why it exists: pg_receivewal is the measured-correct receiver (it fsyncs, then reports its flush
position, which is what ``ANY 4`` counts). This module decides when it may run — only against the writer
of the node's current term in the node's cluster (``fencing.decide``) — restarts it with backoff, and
kills it the moment the term changes, before the term update is acknowledged. It must not write WAL
files itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import time

from aurora_storage import fencing
from aurora_storage.node import runtime, writer_probe

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Child side: get SIGKILL when the node process dies, so a killed node never leaves a receiver acking."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Receiver:
    def __init__(self, rt: runtime.Runtime) -> None:
        self.rt = rt
        self._proc: asyncio.subprocess.Process | None = None

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

    async def _check(self) -> fencing.Decision:
        st = self.rt.state
        if not st.writer:
            return fencing.Decision(False, "no writer configured")
        try:
            facts, watch = await writer_probe.probe(st.writer)
        except writer_probe.ProbeError as err:
            self.rt.writer.reachable = False
            self.rt.writer.error = str(err)
            return fencing.Decision(False, str(err))
        self.rt.writer = watch
        return fencing.decide(st.term, st.system_identifier, self.rt.cfg.cluster_name, facts)

    async def run(self) -> None:
        backoff = 0.2
        while True:
            self.rt.term_changed.clear()
            decision = await self._check()
            self.rt.decision = decision.reason
            if not decision.stream:
                log.info("not streaming: %s", decision.reason)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.rt.term_changed.wait(), timeout=min(backoff, 2.0))
                backoff = min(backoff * 2, 2.0)
                continue
            if self.rt.state.system_identifier is None and self.rt.writer.system_identifier:
                async with self.rt.term_lock:
                    self.rt.state = self.rt.state.with_term(
                        self.rt.state.term, None, self.rt.writer.system_identifier
                    )
                    await asyncio.to_thread(self.rt.state_file.save, self.rt.state)
            started = time.monotonic()
            await self._stream(self.rt.state.writer or "")
            backoff = 0.2 if time.monotonic() - started > 10 else min(backoff * 2, 5.0)
            await asyncio.sleep(backoff)

    async def _stream(self, conninfo: str) -> None:
        term = self.rt.state.term
        proc = await asyncio.create_subprocess_exec(
            *self._command(conninfo),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        self._proc = proc
        self.rt.receiver_pid = proc.pid
        self.rt.receiver_since = time.time()
        self.rt.counters.receiver_starts += 1
        log.info("receiver pid %s started at term %s", proc.pid, term)
        tail: list[str] = []
        assert proc.stderr is not None
        reader = asyncio.create_task(self._drain(proc.stderr, tail))
        waiter = asyncio.create_task(proc.wait())
        fenced = asyncio.create_task(self.rt.term_changed.wait())
        try:
            await asyncio.wait({waiter, fenced}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                await self.fence()
        finally:
            fenced.cancel()
            await waiter
            await reader
            self._proc = None
            self.rt.receiver_pid = None
        self.rt.last_receiver_error = " | ".join(tail[-3:]) or None
        log.warning(
            "receiver pid %s exited rc=%s: %s", proc.pid, proc.returncode, self.rt.last_receiver_error
        )

    async def _drain(self, stream: asyncio.StreamReader, tail: list[str]) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            tail.append(text)
            del tail[:-20]
            log.info("pg_receivewal: %s", text)


async def watch_writer(rt: runtime.Runtime, receiver: Receiver, interval: float = 1.0) -> None:
    """Refresh writer facts for lag/durability metrics; fence if the writer's term no longer matches."""
    while True:
        await asyncio.sleep(interval)
        if not rt.state.writer:
            continue
        try:
            facts, watch = await writer_probe.probe(rt.state.writer)
        except writer_probe.ProbeError as err:
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
