"""Which instance writes and which read, from the instance managers' own reports. Pure.

Why from the managers and not from the operator or the Kubernetes API: a paused cluster's managers keep
running and each knows the role and term it was given (its intent), so the proxy needs no credentials for
the API server and no push from the operator; the highest term names the writer, as it does for the storage
nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

from aurora_api import contract, https
from aurora_api.reports import InstanceReport


@dataclass(frozen=True)
class Address:
    host: str
    postgres_port: int = contract.POSTGRES_PORT
    http_port: int = contract.INSTANCE_HTTP_PORT

    @property
    def manager(self) -> str:
        return https.url(f"{self.host}:{self.http_port}")

    def __str__(self) -> str:
        return self.host


def parse_instances(text: str) -> list[Address]:
    """``host`` or ``host:postgres_port:http_port``, comma-separated; ValueError on anything else."""
    found = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        parts = item.split(":")
        if len(parts) == 1:
            found.append(Address(parts[0]))
        elif len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            found.append(Address(parts[0], int(parts[1]), int(parts[2])))
        else:
            raise ValueError(f"instance {item!r}: expected host or host:postgres_port:http_port")
    if not found:
        raise ValueError("no instances given")
    return found


@dataclass(frozen=True)
class Roles:
    writer: Address | None
    readers: tuple[Address, ...]


def roles(reports: dict[Address, InstanceReport | None]) -> Roles:
    """The writer is the instance whose intent is writer at the highest term; readers are those told to
    read at that term or later (a former writer not yet demoted is neither)."""
    writers = [
        (r.intent.term, a)
        for a, r in reports.items()
        if r is not None and r.intent is not None and r.intent.role == contract.ROLE_WRITER
    ]
    if not writers:
        return Roles(None, ())
    term, writer = max(writers, key=lambda t: t[0])
    readers = tuple(
        a
        for a, r in reports.items()
        if r is not None
        and r.intent is not None
        and r.intent.role == contract.ROLE_READER
        and r.intent.term >= term
    )
    return Roles(writer, readers)
