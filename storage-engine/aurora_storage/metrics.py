"""Prometheus text exposition (format 0.0.4) from plain values, with no I/O.

Why it exists: the node exports a dozen gauges and counters; a 30-line renderer avoids a dependency
and is trivially testable. It must not collect values itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    name: str
    help: str
    kind: str  # "gauge" | "counter"
    value: float | int | None
    labels: Mapping[str, str] = field(default_factory=dict)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(samples: Iterable[Sample]) -> str:
    lines: list[str] = []
    seen: set[str] = set()
    for s in samples:
        if s.value is None:
            continue
        if s.name not in seen:
            seen.add(s.name)
            lines.append(f"# HELP {s.name} {s.help}")
            lines.append(f"# TYPE {s.name} {s.kind}")
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(s.labels.items()))
        value = float(s.value) if isinstance(s.value, float) else int(s.value)
        lines.append(f"{s.name}{{{labels}}} {value}" if labels else f"{s.name} {value}")
    return "\n".join(lines) + "\n"
