"""The Data API on the kind test bed, called with boto3's own ``rds-data`` client (through a port-forward
to the cluster's ``<name>-data-api`` Service, signed with the generated key): every parameter type, results
with metadata and as JSON, a rolled-back transaction and a committed batch, an injection attempt stored as
data, AWS-shaped errors for a wrong secret, an unknown cluster and a malformed body (the service stays up),
the 45 s statement timeout, and an idle transaction's expiry.

It is served over HTTPS: the handshake through the port-forward is verified by the Service's name with the
CA the cluster publishes (and fails with another CA; plain HTTP gets no answer). boto3 itself then skips
verification, as it can only check the name it connects to, here ``127.0.0.1``."""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from typing import Any

import aurora
import boto3  # type: ignore[import-untyped]
import botocore.config  # type: ignore[import-untyped]
import pytest
import urllib3
from aurora_operator import certs
from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]
from kube import Kubectl, PortForward, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("operator")]
NAME = "demo"
ARN = f"arn:aws:rds:us-east-1:000000000000:cluster:{NAME}"
SECRET = f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{NAME}-app"
IDLE_SECONDS = 5
Fixture = tuple[Any, PortForward, tuple[str, str]]
UUID = "00000000-0000-4000-8000-000000000001"


def p(name: str, hint: str | None = None, **value: Any) -> dict[str, Any]:
    return {"name": name, "value": value} | ({"typeHint": hint} if hint else {})


@pytest.fixture
def rds(namespace: Kubectl) -> Iterator[Fixture]:
    manifest = aurora.demo(readers=1)
    manifest["spec"]["dataApi"] = {"transactionIdleSeconds": IDLE_SECONDS}
    namespace.apply([manifest])
    st = aurora.wait_ready(namespace, NAME)
    service = f"{NAME}-data-api.{namespace.namespace}.svc"
    assert st["endpoints"]["dataApi"] == f"https://{service}:8080"
    namespace.run("rollout", "status", f"deployment/{NAME}-data-api", "--timeout=120s")
    data = namespace.get_json("secret", st["secrets"]["dataApiKeys"])["data"]
    key = (base64.b64decode(data["accessKeyId"]).decode(), base64.b64decode(data["secretAccessKey"]).decode())
    forward = PortForward(namespace, f"svc/{NAME}-data-api", 8080)
    published = namespace.get_json("configmap", f"{NAME}-ca")["data"]["ca.crt"]
    check_https(forward, service, published)
    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    client = boto3.client(
        "rds-data", endpoint_url=https(forward), region_name="us-east-1", aws_access_key_id=key[0],
        aws_secret_access_key=key[1], verify=False,
        config=botocore.config.Config(retries={"max_attempts": 1}, read_timeout=90),
    )  # fmt: skip
    try:
        yield client, forward, key
    finally:
        forward.close()


def test_data_api_with_boto3_types_transactions_errors_and_timeouts(rds: Fixture) -> None:
    client, forward, key = rds

    def run(sql: str, params: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
        forward.ensure()
        out: dict[str, Any] = client.execute_statement(
            resourceArn=ARN, secretArn=SECRET, sql=sql, parameters=params or [], **kw
        )
        return out

    # every parameter type, then results with metadata and as JSON,
    run("CREATE TABLE types (s text, l bigint, d double precision, b boolean, bl bytea, n text, a text[], "
        "dt date, t time, ts timestamp, dec numeric(12,4), u uuid, j jsonb)")  # fmt: skip
    params = [
        p("s", stringValue="héllo"), p("l", longValue=-(2**62)), p("d", doubleValue=-0.125),
        p("b", booleanValue=False), p("bl", blobValue=bytes(range(256))), p("n", isNull=True),
        p("a", arrayValue={"stringValues": ["x", "y"]}), p("dt", "DATE", stringValue="2026-02-28"),
        p("t", "TIME", stringValue="23:59:59"), p("ts", "TIMESTAMP", stringValue="2026-12-01 10:00:00.5"),
        p("dec", "DECIMAL", stringValue="-12345678.1234"), p("u", "UUID", stringValue=UUID),
        p("j", "JSON", stringValue='{"nested": {"ok": true}}'),
    ]  # fmt: skip
    run(f"INSERT INTO types VALUES ({', '.join(':' + x['name'] for x in params)})", params)
    got = run("SELECT * FROM types", includeResultMetadata=True)
    rec = got["records"][0]
    assert rec[:7] == [
        {"stringValue": "héllo"}, {"longValue": -(2**62)}, {"doubleValue": -0.125}, {"booleanValue": False},
        {"blobValue": bytes(range(256))}, {"isNull": True}, {"arrayValue": {"stringValues": ["x", "y"]}},
    ]  # fmt: skip
    assert [f["stringValue"] for f in rec[7:12]] == [
        "2026-02-28", "23:59:59", "2026-12-01 10:00:00.500000", "-12345678.1234", UUID,
    ]  # fmt: skip
    assert [m["typeName"] for m in got["columnMetadata"]][:4] == ["text", "int8", "float8", "bool"]
    rows = json.loads(run("SELECT s, j FROM types", formatRecordsAs="JSON")["formattedRecords"])
    assert rows == [{"s": "héllo", "j": {"nested": {"ok": True}}}]
    # a rolled-back transaction leaves nothing, a committed batch every row,
    run("CREATE TABLE t (id int PRIMARY KEY, v text)")
    tx = client.begin_transaction(resourceArn=ARN, secretArn=SECRET)["transactionId"]
    run("INSERT INTO t VALUES (0, 'gone')", transactionId=tx)
    client.rollback_transaction(resourceArn=ARN, secretArn=SECRET, transactionId=tx)
    sets = [[p("id", longValue=i), p("v", stringValue=f"v{i}")] for i in range(1, 26)]
    client.batch_execute_statement(resourceArn=ARN, secretArn=SECRET, sql="INSERT INTO t VALUES (:id, :v)",
                                   parameterSets=sets)  # fmt: skip
    assert run("SELECT count(*), min(id) FROM t")["records"] == [[{"longValue": 25}, {"longValue": 1}]]
    # an injection attempt is stored as data,
    evil = "'; DROP TABLE t; --"
    run("INSERT INTO t VALUES (99, :v)", [p("v", stringValue=evil)])
    assert run("SELECT v FROM t WHERE id = 99")["records"] == [[{"stringValue": evil}]]
    # wrong secret, unknown cluster, malformed body: AWS-shaped errors, and the service stays up,
    with pytest.raises(client.exceptions.ForbiddenException):
        superuser = SECRET.replace("-app", "-superuser")  # exists, but not allowed: not in spec.dataApi
        client.execute_statement(resourceArn=ARN, secretArn=superuser, sql="SELECT 1")
    with pytest.raises(client.exceptions.NotFoundException):
        client.execute_statement(resourceArn=ARN.replace(NAME, "nope"), secretArn=SECRET, sql="SELECT 1")
    status, error_type = raw_call(https(forward), key, b'{"resourceArn": ')
    assert (status, error_type) == (400, "BadRequestException")
    assert run("SELECT 1")["records"] == [[{"longValue": 1}]]
    # a statement past 45 s is stopped with StatementTimeoutException,
    started = time.monotonic()
    with pytest.raises(client.exceptions.StatementTimeoutException):
        run("SELECT pg_sleep(60)")
    waited = time.monotonic() - started
    assert 44 < waited < 60, waited
    # and an idle transaction expires.
    tx = client.begin_transaction(resourceArn=ARN, secretArn=SECRET)["transactionId"]
    time.sleep(IDLE_SECONDS + 3)
    with pytest.raises(client.exceptions.TransactionNotFoundException):
        run("SELECT 1", transactionId=tx)
    wait_for("the service still answering", lambda: run("SELECT 2")["records"] == [[{"longValue": 2}]], 10)
    print(f"\ndata api: all calls answered as AWS would; statement timeout after {waited:.1f}s")


def https(forward: PortForward) -> str:
    return forward.ensure().replace("http://", "https://")


def check_https(forward: PortForward, service: str, ca: str) -> None:
    """verify-full by the Service's name with the published CA; another CA refused; plain HTTP unanswered."""
    port = int(forward.ensure().rsplit(":", 1)[1])

    def handshake(cadata: str) -> None:
        context = ssl.create_default_context(cadata=cadata)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=service) as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")

    handshake(ca)
    other = certs.issue_ca("another-ca", datetime.datetime.now(datetime.UTC)).cert.decode()
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(other)
    with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
    print(f"\ndata api: HTTPS verified as {service} with the published CA; another CA and plain HTTP refused")


def raw_call(endpoint: str, key: tuple[str, str], body: bytes) -> tuple[int, str]:
    """A correctly signed request with a malformed body (boto3 cannot send one)."""
    request = AWSRequest(method="POST", url=f"{endpoint}/Execute", data=body,
                         headers={"Content-Type": "application/json"})  # fmt: skip
    SigV4Auth(Credentials(*key), "rds-data", "us-east-1").add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10, context=ssl._create_unverified_context()) as response:
            return response.status, ""
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("x-amzn-ErrorType", "")
