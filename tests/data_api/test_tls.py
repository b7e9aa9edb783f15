"""The Data API over HTTPS: its certificate verified by name with the CA that issued it, refused with
another CA, plain HTTP refused, and a renewed certificate served without a restart.

Prose: certificates come from the operator's own code (``aurora_operator.certs``), written where the pod
mounts its Secret; boto3's ``rds-data`` client calls a real Data API in front of a real PostgreSQL.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

import botocore.exceptions  # type: ignore[import-untyped]
import httpx
import pytest
from aurora_api import https
from aurora_api.contract import TLS_CERT, TLS_KEY
from aurora_operator import certs

from tests.data_api import server
from tests.fixtures.postgres import PG_USER, PgFactory

pytestmark = pytest.mark.integration
ARN = "arn:aws:rds:us-east-1:123456789012:cluster:demo"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:demo-app"


def _issue(directory: Path, name: str) -> Path:
    """A CA and a certificate for ``localhost`` signed by it, written as the mounted Secret; the CA's file."""
    now = datetime.datetime.now(datetime.UTC)
    ca = certs.issue_ca(name, now)
    pair = certs.issue_server(ca, ["localhost"], now)
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.crt").write_bytes(ca.cert)
    (directory / TLS_KEY).write_bytes(pair.key)
    (directory / TLS_CERT).write_bytes(pair.cert)
    return directory / f"{name}.crt"


def _select_one(endpoint: str, verify: str) -> Any:
    client: Any = server.client(endpoint, verify=verify)
    return client.execute_statement(resourceArn=ARN, secretArn=SECRET, sql="SELECT 1")["records"]


def test_data_api_serves_https_verified_by_its_ca_and_follows_a_renewed_certificate(
    pg_factory: PgFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(https, "FOLLOW_SECONDS", 0.2)
    pg = pg_factory()
    mounted = tmp_path / "tls"
    first = _issue(mounted, "first-ca")
    config = server.local_config(pg.host, pg.port, tmp_path, PG_USER)
    config = type(config)(**{**config.__dict__, "tls_dir": mounted})
    with server.running(config) as endpoint:
        endpoint = endpoint.replace("127.0.0.1", "localhost")  # the name the certificate carries
        assert endpoint.startswith("https://")
        assert _select_one(endpoint, str(first)) == [[{"longValue": 1}]]
        other = _issue(tmp_path / "elsewhere", "other-ca")
        with pytest.raises(botocore.exceptions.SSLError):
            _select_one(endpoint, str(other))
        with pytest.raises(httpx.HTTPError):  # plain HTTP gets no answer
            httpx.post(endpoint.replace("https://", "http://") + "/Execute", content=b"{}", timeout=5)

        renewed = _issue(mounted, "renewed-ca")  # as Kubernetes swaps a renewed Secret's files
        deadline = time.monotonic() + 10
        while True:
            try:
                assert _select_one(endpoint, str(renewed)) == [[{"longValue": 1}]]
                break
            except botocore.exceptions.SSLError:
                assert time.monotonic() < deadline, "the renewed certificate was not served within 10 s"
                time.sleep(0.2)
        with pytest.raises(botocore.exceptions.SSLError):
            _select_one(endpoint, str(first))


def test_a_malformed_or_mismatched_certificate_is_not_loaded_and_the_previous_one_stays(
    tmp_path: Path,
) -> None:
    mounted = tmp_path / "tls"
    _issue(mounted, "ca")
    served = https.load(mounted)
    before = served.loaded
    (mounted / TLS_CERT).write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n")
    assert served.refresh() is False and served.loaded == before
    _issue(tmp_path / "other", "other")
    (mounted / TLS_CERT).write_bytes((tmp_path / "other" / TLS_CERT).read_bytes())  # the key is not its own
    assert served.refresh() is False and served.loaded == before
    _issue(mounted, "renewed")
    assert served.refresh() is True and served.refresh() is False
