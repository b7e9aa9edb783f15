"""Condition bookkeeping: set a condition, keep ``lastTransitionTime`` unless the status really changed.

Why separate: transition times and the Events derived from transitions are easy to get subtly wrong (a
timestamp that moves on every resync makes ``kubectl wait`` and humans distrust it).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from aurora_api.v1alpha1.common import Condition, ConditionStatus


def make(type_: str, ok: bool | None, reason: str, message: str, generation: int) -> Condition:
    status: ConditionStatus = "Unknown" if ok is None else ("True" if ok else "False")
    return Condition(
        type=type_, status=status, reason=reason, message=message, observed_generation=generation
    )


def merge(
    previous: Iterable[Condition], current: Iterable[Condition], now: datetime.datetime
) -> list[Condition]:
    """``current`` with transition times carried over from ``previous`` where the status did not change."""
    before = {cond.type: cond for cond in previous}
    merged = []
    for cond in current:
        old = before.get(cond.type)
        keep = old is not None and old.status == cond.status and old.last_transition_time is not None
        stamp = old.last_transition_time if keep and old is not None else now
        merged.append(cond.model_copy(update={"last_transition_time": stamp}))
    return merged


def transitions(previous: Iterable[Condition], current: Iterable[Condition]) -> list[Condition]:
    """Conditions whose status or reason changed (including new ones)."""
    before = {cond.type: (cond.status, cond.reason) for cond in previous}
    return [cond for cond in current if before.get(cond.type) != (cond.status, cond.reason)]
