"""Which transfers a repair batch runs at once, and which it abandons, with no I/O.

Why it exists: a repair batch is a handful of files, each with an ordered list of sources (peers, then
the archive; ``repair_plan.plan``). Trying one source after another puts every failure on the critical
path: a file whose copies are corrupt on all peers waited for five peers to hash and refuse it before the
archive was asked. Here a file's first failure also starts the archive (when it lists the file) next to
the next peer, the first verified copy wins and the other transfers of that file are cancelled. The
driver (``node.repair``) runs the attempts in threads and reports each outcome; this class decides. It
must not perform I/O or know how a transfer works.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from aurora_storage import repair_plan


@dataclass(frozen=True)
class Attempt:
    name: str
    source: int
    """A peer ordinal or :data:`repair_plan.ARCHIVE`."""


@dataclass
class _File:
    fetch: repair_plan.Fetch
    tried: list[int] = field(default_factory=list)
    running: set[int] = field(default_factory=set)
    failures: int = 0
    done: bool = False

    def untried(self) -> list[int]:
        return [s for s in self.fetch.sources if s not in self.tried]


class Batch:
    """Attempts for ``todo``, at most ``slots`` at a time.

    Launch order: a file with nothing running starts its next untried source (files in plan order, so
    new files and retries share the slots fairly); then, for a file that has failed once, the archive as
    a hedge next to the peer that is being tried. A file succeeds with its first verified copy; it fails
    when every source failed.
    """

    def __init__(self, todo: Sequence[repair_plan.Fetch], slots: int) -> None:
        if slots < 1:
            raise ValueError("a batch needs at least one slot")
        self._files = {f.name: _File(f) for f in todo}
        self._slots = slots
        self.installed: list[str] = []
        self.failed: list[str] = []

    @property
    def running(self) -> int:
        return sum(len(f.running) for f in self._files.values())

    @property
    def finished(self) -> bool:
        return all(f.done for f in self._files.values())

    def launch(self) -> list[Attempt]:
        """Attempts to start now (each is then reported once to :meth:`outcome`)."""
        out = []
        while self.running < self._slots and (a := self._next()) is not None:
            f = self._files[a.name]
            f.tried.append(a.source)
            f.running.add(a.source)
            out.append(a)
        return out

    def _next(self) -> Attempt | None:
        pending = [f for f in self._files.values() if not f.done]
        for f in pending:
            if not f.running and (left := f.untried()):
                return Attempt(f.fetch.name, left[0])
        for f in pending:
            if f.failures and repair_plan.ARCHIVE in f.untried():
                return Attempt(f.fetch.name, repair_plan.ARCHIVE)
        return None

    def outcome(self, attempt: Attempt, ok: bool) -> list[Attempt]:
        """Record how ``attempt`` ended; return the attempts to cancel (the file's other transfers)."""
        f = self._files[attempt.name]
        f.running.discard(attempt.source)
        if f.done:
            return []  # a cancelled loser, or a copy that arrived second
        if ok:
            f.done = True
            self.installed.append(f.fetch.name)
            losers = [Attempt(f.fetch.name, s) for s in sorted(f.running)]
            return losers
        f.failures += 1
        if not f.running and not f.untried():
            f.done = True
            self.failed.append(f.fetch.name)
        return []
