"""The operator's client of the instance managers' HTTP API (status, promote, demote), plus a fake.

Why a narrow Protocol: failover is decided from what the instances report and carried out through their
API; the reconciler is unit-tested against ``FakeInstances`` and runs against ``HttpInstances``. Contract:
``status`` returns the parsed report or None when the instance does not answer within the timeout;
``promote``/``demote`` return the HTTP status code (0 when unreachable). Both calls are idempotent per term on
the instance side (202 accepted or running, 200 done, 409 refused for an older term), so the reconciler
repeats them every pass until the instance reports the result.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import httpx
import pydantic
from aurora_api import contract, control
from aurora_api.reports import BackupJobReport, InstanceReport

from . import verified

log = logging.getLogger(__name__)


class Instances(Protocol):
    async def status(self, url: str) -> InstanceReport | None:
        """The instance's report, or None when it cannot be reached or answers garbage."""

    async def promote(self, url: str, term: int) -> int:
        """Ask the instance to become the writer at ``term``; the HTTP status (0: unreachable)."""

    async def demote(self, url: str, term: int, writer: str) -> int:
        """Ask the instance to follow ``writer`` (host:port) as a reader at ``term``; the HTTP status."""

    async def start_backup(self, url: str, backup_id: str, reason: str, prefix: str = "") -> int:
        """Ask the instance to take base backup ``backup_id`` (under ``prefix`` below the cluster's
        prefix); the HTTP status (202 started or known)."""

    async def backups(self, url: str) -> list[BackupJobReport] | None:
        """The instance's backup jobs, or None when it cannot be reached."""

    async def pause(self, url: str, wakes: int) -> int:
        """Ask the instance to pause unless woken since ``wakes``; the HTTP status (409: woken since)."""

    async def resume(self, url: str) -> int:
        """Ask the instance to resume, without waiting for it to be ready; the HTTP status."""

    async def switch_wal(self, url: str) -> str | None:
        """Ask the writer to close its current WAL segment; the switch LSN, or None (not a ready writer,
        unreachable)."""


class HttpInstances:
    """``Instances`` over httpx. Short timeouts: an instance that does not answer in a second is unhealthy."""

    def __init__(
        self, timeout: float = 1.5, client: httpx.AsyncClient | None = None, tokens: tuple[str, ...] = ()
    ) -> None:
        self._timeout = timeout
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._attempts = control.attempts(tokens) or [{}]

    def with_tokens(self, tokens: tuple[str, ...], ca: bytes | None = None) -> HttpInstances:
        """Calls to one cluster's pods: signing changes with its control tokens (the current one; during
        a rotation the previous one too, tried after a 403) and, with ``ca``, over HTTPS verified by its CA
        (``verified``)."""
        client = verified.client(ca, self._timeout, self._client)
        return HttpInstances(self._timeout, client, tokens)

    async def _signed(self, url: str, **kw: Any) -> httpx.Response:
        for headers in self._attempts:
            response = await self._client.post(url, headers=headers, **kw)
            if response.status_code != 403:
                break
        return response

    async def status(self, url: str) -> InstanceReport | None:
        try:
            response = await self._client.get(url + contract.InstancePaths.STATUS)
            if response.status_code != 200:
                return None
            return InstanceReport.model_validate(response.json())
        except (httpx.HTTPError, ValueError, pydantic.ValidationError) as err:
            log.debug("status of %s: %s", url, err)
            return None

    async def _post(self, url: str, body: dict[str, object]) -> int:
        try:
            response = await self._signed(url, json=body)
        except httpx.HTTPError as err:
            log.info("POST %s: %s", url, err)
            return 0
        if response.status_code >= 300:
            log.warning("POST %s %s: %d %s", url, body, response.status_code, response.text[:300])
        return response.status_code

    async def promote(self, url: str, term: int) -> int:
        return await self._post(url + contract.InstancePaths.PROMOTE, {contract.PromoteFields.TERM: term})

    async def demote(self, url: str, term: int, writer: str) -> int:
        body: dict[str, object] = {contract.PromoteFields.TERM: term, contract.PromoteFields.WRITER: writer}
        return await self._post(url + contract.InstancePaths.DEMOTE, body)

    async def start_backup(self, url: str, backup_id: str, reason: str, prefix: str = "") -> int:
        body: dict[str, object] = {
            contract.BackupFields.ID: backup_id, contract.BackupFields.REASON: reason,
            contract.BackupFields.PREFIX: prefix,
        }  # fmt: skip
        return await self._post(url + contract.InstancePaths.BACKUPS, body)

    async def pause(self, url: str, wakes: int) -> int:
        return await self._post(url + contract.InstancePaths.PAUSE, {contract.PauseFields.WAKES: wakes})

    async def resume(self, url: str) -> int:
        return await self._post(url + contract.InstancePaths.RESUME + "?wait=0", {})

    async def switch_wal(self, url: str) -> str | None:
        try:
            response = await self._signed(url + contract.InstancePaths.SWITCH_WAL, timeout=10)
            if response.status_code != 200:
                return None
            lsn = response.json().get("lsn")
            return lsn if isinstance(lsn, str) else None
        except (httpx.HTTPError, ValueError) as err:
            log.info("switching WAL at %s: %s", url, err)
            return None

    async def backups(self, url: str) -> list[BackupJobReport] | None:
        try:
            response = await self._client.get(url + contract.InstancePaths.BACKUPS)
            if response.status_code != 200:
                return None
            return [BackupJobReport.model_validate(job) for job in response.json()]
        except (httpx.HTTPError, ValueError, pydantic.ValidationError) as err:
            log.debug("backups of %s: %s", url, err)
            return None


class FakeInstances:
    """In-memory instances keyed by URL; unknown URLs are unreachable. Records every request."""

    def __init__(self, reports: dict[str, InstanceReport] | None = None) -> None:
        self.reports = reports or {}
        self.requests: list[tuple[str, str, int]] = []
        self.jobs: dict[str, list[BackupJobReport]] = {}

    async def status(self, url: str) -> InstanceReport | None:
        return self.reports.get(url)

    async def promote(self, url: str, term: int) -> int:
        self.requests.append(("promote", url, term))
        return 202 if url in self.reports else 0

    async def demote(self, url: str, term: int, writer: str) -> int:
        self.requests.append(("demote", url, term))
        return 202 if url in self.reports else 0

    async def start_backup(self, url: str, backup_id: str, reason: str, prefix: str = "") -> int:
        self.requests.append(("backup", url, 0))
        if url not in self.reports:
            return 0
        self.jobs.setdefault(url, []).append(BackupJobReport(id=backup_id, state="running", reason=reason))
        return 202

    async def backups(self, url: str) -> list[BackupJobReport] | None:
        return self.jobs.get(url, []) if url in self.reports else None

    async def pause(self, url: str, wakes: int) -> int:
        self.requests.append(("pause", url, wakes))
        report = self.reports.get(url)
        if report is None:
            return 0
        return 409 if report.wakes != wakes else 202

    async def resume(self, url: str) -> int:
        self.requests.append(("resume", url, 0))
        return 202 if url in self.reports else 0

    async def switch_wal(self, url: str) -> str | None:
        self.requests.append(("switch-wal", url, 0))
        report = self.reports.get(url)
        return report.flushed_lsn if report is not None and report.role == contract.ROLE_WRITER else None
