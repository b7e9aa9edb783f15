"""Bad input to the Data API, signed and unsigned, over real HTTP: every malformed request gets a 4xx with
an AWS-shaped error (``x-amzn-ErrorType``), never a 500 or a dropped connection, and the service keeps
serving. The bodies are what a broken or hostile client sends: not JSON, not an object, wrong types in
every field the service reads, oversized, deeply nested."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

from tests.data_api import server
from tests.fixtures.postgres import PG_USER, PgFactory

pytestmark = pytest.mark.integration
ARN = "arn:aws:rds:us-east-1:123456789012:cluster:demo"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:demo-app-AbCdEf"
GOOD = {"resourceArn": ARN, "secretArn": SECRET}


@pytest.fixture
def endpoint(pg_factory: PgFactory, tmp_path: Path) -> Iterator[str]:
    pg = pg_factory()
    config = server.local_config(pg.host, pg.port, tmp_path, PG_USER)
    with server.running(config) as url:
        yield url


def signed(url: str, body: bytes) -> httpx.Response:
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(server.KEY, server.SECRET_KEY), "rds-data", "us-east-1").add_auth(request)
    return httpx.post(url, content=body, headers=dict(request.headers.items()), timeout=10)


def execute(**fields: Any) -> bytes:
    return json.dumps(GOOD | fields).encode()


MALFORMED: dict[str, bytes] = {
    "not JSON": b"{not json",
    "binary": bytes(range(256)),
    "a JSON array": b"[1, 2, 3]",
    "a JSON string": b'"SELECT 1"',
    "null": b"null",
    "resourceArn a number": json.dumps({"resourceArn": 7, "secretArn": SECRET, "sql": "SELECT 1"}).encode(),
    "secretArn an object": json.dumps({"resourceArn": ARN, "secretArn": {}, "sql": "SELECT 1"}).encode(),
    "no sql": execute(),
    "sql a number": execute(sql=123),
    "sql a list": execute(sql=["SELECT 1"]),
    "sql empty": execute(sql=""),
    "parameters a string": execute(sql="SELECT :a", parameters="a=1"),
    "parameter not an object": execute(sql="SELECT :a", parameters=[1]),
    "parameter without a name": execute(sql="SELECT :a", parameters=[{"value": {"longValue": 1}}]),
    "parameter name a number": execute(sql="SELECT :a", parameters=[{"name": 1, "value": {"longValue": 1}}]),
    "value not an object": execute(sql="SELECT :a", parameters=[{"name": "a", "value": 5}]),
    "two value kinds": execute(
        sql="SELECT :a", parameters=[{"name": "a", "value": {"longValue": 1, "isNull": True}}]
    ),
    "unknown value kind": execute(sql="SELECT :a", parameters=[{"name": "a", "value": {"bigValue": 1}}]),
    "longValue a string": execute(sql="SELECT :a", parameters=[{"name": "a", "value": {"longValue": "x"}}]),
    "doubleValue a string": execute(
        sql="SELECT :a", parameters=[{"name": "a", "value": {"doubleValue": "x"}}]
    ),
    "blobValue not base64": execute(
        sql="SELECT :a", parameters=[{"name": "a", "value": {"blobValue": "%%%"}}]
    ),
    "bad typeHint": execute(
        sql="SELECT :a", parameters=[{"name": "a", "value": {"stringValue": "x"}, "typeHint": "WHATEVER"}]
    ),
    "bad DATE": execute(
        sql="SELECT :a", parameters=[{"name": "a", "value": {"stringValue": "yesterday"}, "typeHint": "DATE"}]
    ),
    "arrayValue garbage": execute(sql="SELECT :a", parameters=[{"name": "a", "value": {"arrayValue": 3}}]),
    "includeResultMetadata a string": execute(sql="SELECT 1", includeResultMetadata="yes"),
    "formatRecordsAs unknown": execute(sql="SELECT 1", formatRecordsAs="XML"),
    "transactionId a number": execute(sql="SELECT 1", transactionId=5),
    "transactionId unknown": execute(sql="SELECT 1", transactionId="no-such-transaction"),
    "deeply nested": execute(sql="SELECT 1", parameters=None).replace(
        b"null", b"[" * 100_000 + b"]" * 100_000
    ),
}


def unclean(response: httpx.Response) -> str | None:
    """What is wrong with how ``response`` refuses (None: a 4xx with an AWS error type and a message)."""
    if not 400 <= response.status_code < 500:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if not response.headers.get("x-amzn-ErrorType"):
        return "no x-amzn-ErrorType"
    if not json.loads(response.text).get("message"):
        return f"no message: {response.text[:200]}"
    return None


def assert_refused_cleanly(response: httpx.Response, what: str) -> None:
    problem = unclean(response)
    assert problem is None, (what, problem)


def test_data_api_refuses_every_malformed_request_with_a_4xx_and_keeps_serving(endpoint: str) -> None:
    answers = {what: unclean(signed(f"{endpoint}/Execute", body)) for what, body in MALFORMED.items()}
    assert {what: problem for what, problem in answers.items() if problem} == {}
    batch = json.dumps(
        GOOD | {"sql": "SELECT :a", "parameterSets": [[{"name": "a", "value": 1}], 7]}
    ).encode()
    assert_refused_cleanly(signed(f"{endpoint}/BatchExecute", batch), "parameterSets garbage")
    for path in ("/CommitTransaction", "/RollbackTransaction"):
        assert_refused_cleanly(signed(endpoint + path, execute(transactionId=["x"])), f"{path} transactionId")
    # Unsigned, or signed for another body: refused before the body is read as JSON.
    unsigned = httpx.post(f"{endpoint}/Execute", content=b"{not json", timeout=10)
    assert_refused_cleanly(unsigned, "unsigned")
    # Over the 2 MiB limit: 413 from the server, the connection not left hanging.
    huge = httpx.post(f"{endpoint}/Execute", content=b"x" * (3 << 20), timeout=10)
    assert huge.status_code == 413
    # Still serving.
    answer = signed(f"{endpoint}/Execute", execute(sql="SELECT 41 + 1"))
    assert answer.status_code == 200 and answer.json()["records"] == [[{"longValue": 42}]]
