"""The operator's narrow client of the storage nodes' HTTP API (``StoragePaths.TERM``), plus a fake.

Why the operator talks to storage nodes at all: a node that was not up when the writer fenced the quorum at
bootstrap stays at term 0 forever (a node only adopts a term from peers when all of them have one), so the
cluster never gets its six nodes. The control plane seeds such nodes with the state the writer gave their
peers (see ``reconcile.terms``). Contract: ``status`` returns the node's own report (term, writer,
system identifier, streaming state) or None when unreachable; ``put_term`` returns whether the node accepted.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx
import pydantic
from aurora_api import contract, control
from aurora_api.reports import StorageReport

from . import verified

State = dict[str, Any]


class StorageNodes(Protocol):
    async def status(self, url: str) -> StorageReport | None:
        """The node's own report (term, streaming state, repair), or None if it cannot be reached."""

    async def put_term(self, url: str, body: State) -> bool:
        """Ask the node to adopt ``body`` (term, writer, system_identifier); True when it did."""


class HttpStorageNodes:
    """``StorageNodes`` over httpx with short timeouts: a slow node must not stall a reconcile."""

    def __init__(
        self, timeout: float = 2.0, client: httpx.AsyncClient | None = None, tokens: tuple[str, ...] = ()
    ) -> None:
        self._timeout = timeout
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._attempts = control.attempts(tokens) or [{}]

    def with_tokens(self, tokens: tuple[str, ...], ca: bytes | None = None) -> HttpStorageNodes:
        """Calls to one cluster's pods: signing term changes with its control tokens (the current one; during
        a rotation the previous one too, tried after a 403) and, with ``ca``, over HTTPS verified by its CA
        (``verified``)."""
        client = verified.client(ca, self._timeout, self._client)
        return HttpStorageNodes(self._timeout, client, tokens)

    async def status(self, url: str) -> StorageReport | None:
        try:
            response = await self._client.get(url + contract.StoragePaths.STATUS)
            if response.status_code != 200:
                return None
            return StorageReport.model_validate(response.json())
        except (httpx.HTTPError, ValueError, pydantic.ValidationError):
            return None

    async def put_term(self, url: str, body: State) -> bool:
        try:
            for headers in self._attempts:  # the next token only after a 403
                term_url = url + contract.StoragePaths.TERM
                response = await self._client.put(term_url, json=body, headers=headers)
                if response.status_code != 403:
                    break
        except httpx.HTTPError:
            return False
        return response.status_code == 200


class FakeStorageNodes:
    """In-memory nodes keyed by URL; unknown URLs are unreachable."""

    def __init__(self, states: dict[str, State]) -> None:
        self.states = states
        self.puts: list[tuple[str, State]] = []

    async def status(self, url: str) -> StorageReport | None:
        state = self.states.get(url)
        return None if state is None else StorageReport.model_validate(state)

    async def put_term(self, url: str, body: State) -> bool:
        if url not in self.states or int(body["term"]) < int(self.states[url].get("term", 0)):
            return False
        self.puts.append((url, body))
        self.states[url] = {**self.states[url], **body}
        return True
