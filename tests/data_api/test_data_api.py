"""The Data API with boto3's own ``rds-data`` client against a real PostgreSQL: every parameter type,
metadata and JSON results, transactions, batches, injection as data, AWS-shaped errors, timeouts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aurora_data_api.service import Config

from tests.data_api import server
from tests.fixtures.postgres import PG_USER, PgFactory

pytestmark = pytest.mark.integration
ARN = "arn:aws:rds:us-east-1:123456789012:cluster:demo"
UUID = "12345678-1234-5678-1234-567812345678"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:demo-app-AbCdEf"


@pytest.fixture
def rds(pg_factory: PgFactory, tmp_path: Path) -> Iterator[Any]:
    pg = pg_factory()
    config = server.local_config(pg.host, pg.port, tmp_path, PG_USER)
    with server.running(config) as endpoint:
        yield server.client(endpoint)


def run(rds: Any, sql: str, params: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    return rds.execute_statement(resourceArn=ARN, secretArn=SECRET, sql=sql, parameters=params or [], **kw)  # type: ignore[no-any-return]


def p(name: str, hint: str | None = None, **value: Any) -> dict[str, Any]:
    return {"name": name, "value": value} | ({"typeHint": hint} if hint else {})


def test_data_api_every_parameter_type_round_trips_with_metadata_and_as_json(rds: Any) -> None:
    run(rds, "CREATE TABLE types (s text, l bigint, d double precision, b boolean, bl bytea, n text, "
             "a bigint[], dt date, t time, ts timestamp, dec numeric(10,3), u uuid, j jsonb)")  # fmt: skip
    params = [
        p("s", stringValue="it's 100% text"), p("l", longValue=2**40), p("d", doubleValue=2.5),
        p("b", booleanValue=True), p("bl", blobValue=b"\x00\x01binary"), p("n", isNull=True),
        p("a", arrayValue={"longValues": [1, 2, 3]}), p("dt", "DATE", stringValue="2026-12-01"),
        p("t", "TIME", stringValue="09:30:15.250"), p("ts", "TIMESTAMP", stringValue="2026-12-01 09:30:15"),
        p("dec", "DECIMAL", stringValue="1234.567"), p("u", "UUID", stringValue=UUID),
        p("j", "JSON", stringValue='{"k": [1, "v"]}'),
    ]  # fmt: skip
    names = ", ".join(f":{x['name']}" for x in params)
    inserted = run(rds, f"INSERT INTO types VALUES ({names})", params)
    assert inserted["numberOfRecordsUpdated"] == 1
    got = run(rds, "SELECT * FROM types", includeResultMetadata=True)
    record = got["records"][0]
    assert record[0] == {"stringValue": "it's 100% text"}
    assert record[1] == {"longValue": 2**40} and record[2] == {"doubleValue": 2.5}
    assert record[3] == {"booleanValue": True} and record[4] == {"blobValue": b"\x00\x01binary"}
    assert record[5] == {"isNull": True} and record[6] == {"arrayValue": {"longValues": [1, 2, 3]}}
    assert [r["stringValue"] for r in record[7:12]] == [
        "2026-12-01", "09:30:15.250000", "2026-12-01 09:30:15", "1234.567", UUID,
    ]  # fmt: skip
    assert json.loads(record[12]["stringValue"]) == {"k": [1, "v"]}
    meta = {m["name"]: (m["typeName"], m["type"]) for m in got["columnMetadata"]}
    assert meta["l"] == ("int8", -5) and meta["ts"] == ("timestamp", 93) and meta["a"] == ("_int8", 2003)
    as_json = json.loads(run(rds, "SELECT s, l, n FROM types", formatRecordsAs="JSON")["formattedRecords"])
    assert as_json == [{"s": "it's 100% text", "l": 2**40, "n": None}]
    # resultSetOptions, as boto3 sends them: decimals as numbers, longs as strings.
    options = {"decimalReturnType": "DOUBLE_OR_LONG", "longReturnType": "STRING"}
    got = run(rds, "SELECT dec, l, 2::numeric FROM types", resultSetOptions=options)
    assert got["records"][0] == [{"doubleValue": 1234.567}, {"stringValue": str(2**40)}, {"stringValue": "2"}]
    with pytest.raises(rds.exceptions.BadRequestException, match="decimalReturnType"):
        run(rds, "SELECT 1", resultSetOptions={"decimalReturnType": "FLOAT"})


def test_data_api_transactions_and_batches(rds: Any) -> None:
    run(rds, "CREATE TABLE tx (id int PRIMARY KEY, v text)")
    tx = rds.begin_transaction(resourceArn=ARN, secretArn=SECRET)["transactionId"]
    run(rds, "INSERT INTO tx VALUES (1, 'rolled back')", transactionId=tx)
    inside = run(rds, "SELECT count(*) FROM tx", transactionId=tx)["records"][0][0]["longValue"]
    assert inside == 1 and run(rds, "SELECT count(*) FROM tx")["records"][0][0]["longValue"] == 0
    assert rds.rollback_transaction(resourceArn=ARN, secretArn=SECRET, transactionId=tx)["transactionStatus"]
    sets = [[p("id", longValue=i), p("v", stringValue=f"row {i}")] for i in range(2, 12)]
    batch = rds.batch_execute_statement(
        resourceArn=ARN, secretArn=SECRET, sql="INSERT INTO tx VALUES (:id, :v)", parameterSets=sets
    )
    assert len(batch["updateResults"]) == 10
    tx = rds.begin_transaction(resourceArn=ARN, secretArn=SECRET)["transactionId"]
    run(rds, "INSERT INTO tx VALUES (100, 'committed')", transactionId=tx)
    rds.commit_transaction(resourceArn=ARN, secretArn=SECRET, transactionId=tx)
    ids = [r[0]["longValue"] for r in run(rds, "SELECT id FROM tx ORDER BY id")["records"]]
    assert ids == [*range(2, 12), 100]
    with pytest.raises(rds.exceptions.DatabaseErrorException, match="duplicate key"):
        rds.batch_execute_statement(  # a failing batch leaves none of its rows
            resourceArn=ARN, secretArn=SECRET, sql="INSERT INTO tx VALUES (:id, 'x')",
            parameterSets=[[p("id", longValue=500)], [p("id", longValue=2)]],
        )  # fmt: skip
    assert run(rds, "SELECT count(*) FROM tx WHERE id = 500")["records"][0][0]["longValue"] == 0


def test_data_api_injection_is_data_and_bad_calls_get_aws_errors(rds: Any) -> None:
    run(rds, "CREATE TABLE notes (body text)")
    evil = "x'); DROP TABLE notes; --"
    run(rds, "INSERT INTO notes VALUES (:body)", [p("body", stringValue=evil)])
    assert run(rds, "SELECT body FROM notes")["records"] == [[{"stringValue": evil}]]
    other = "arn:aws:secretsmanager:us-east-1:123456789012:secret:someone-else"
    with pytest.raises(rds.exceptions.ForbiddenException, match="not allowed"):
        rds.execute_statement(resourceArn=ARN, secretArn=other, sql="SELECT 1")
    with pytest.raises(rds.exceptions.NotFoundException):
        rds.execute_statement(resourceArn=ARN.replace("demo", "other"), secretArn=SECRET, sql="SELECT 1")
    with pytest.raises(rds.exceptions.BadRequestException, match="no value for parameter"):
        run(rds, "SELECT :missing")
    with pytest.raises(rds.exceptions.DatabaseErrorException, match="42P01"):
        run(rds, "SELECT * FROM no_such_table")
    wrong_key = server.client(rds.meta.endpoint_url, secret="not-the-key")
    with pytest.raises(wrong_key.exceptions.ForbiddenException, match="signature"):  # type: ignore[attr-defined]
        wrong_key.execute_statement(resourceArn=ARN, secretArn=SECRET, sql="SELECT 1")  # type: ignore[attr-defined]
    assert run(rds, "SELECT 1")["records"] == [[{"longValue": 1}]]  # still serving


def test_data_api_statement_timeout_and_idle_transaction_expiry(rds: Any) -> None:
    with pytest.raises(rds.exceptions.StatementTimeoutException):
        run(rds, "SELECT pg_sleep(5)")
    assert run(rds, "SELECT 2")["records"] == [[{"longValue": 2}]]
    tx = rds.begin_transaction(resourceArn=ARN, secretArn=SECRET)["transactionId"]
    time.sleep(3.5)  # idle past idle_seconds (2)
    with pytest.raises(rds.exceptions.TransactionNotFoundException):
        run(rds, "SELECT 1", transactionId=tx)


def test_data_api_a_lost_database_is_a_retryable_error_and_its_transactions_end(
    pg_factory: PgFactory, tmp_path: Path
) -> None:
    pg = pg_factory()
    server.write_secret(tmp_path, "demo-app", PG_USER, "unused", "postgres")
    config = Config(
        cluster="demo", host=pg.host, port=pg.port, keys={server.KEY: server.SECRET_KEY},
        secrets_dir=tmp_path,
    )  # fmt: skip
    with server.running(config) as endpoint:
        rds: Any = server.client(endpoint)
        run(rds, "CREATE TABLE kept (id int)")
        tx = rds.begin_transaction(resourceArn=ARN, secretArn=SECRET)["transactionId"]
        run(rds, "INSERT INTO kept VALUES (1)", transactionId=tx)
        pg.stop("fast")  # a failover or a pause, as the Data API sees it
        # 503 ServiceUnavailableError, which boto3 retries once: the retry then finds the transaction gone
        lost = (rds.exceptions.ServiceUnavailableError, rds.exceptions.TransactionNotFoundException)
        with pytest.raises(lost):
            run(rds, "SELECT 1", transactionId=tx)
        pg.start()
        with pytest.raises(rds.exceptions.TransactionNotFoundException):  # never continued elsewhere
            run(rds, "SELECT 1", transactionId=tx)
        answered = None
        for _ in range(3):  # a pooled connection from before the restart may fail once, retryably
            try:
                answered = run(rds, "SELECT count(*) FROM kept")["records"]
                break
            except rds.exceptions.ServiceUnavailableError:
                continue
        assert answered == [[{"longValue": 0}]]  # the uncommitted insert is gone, not half-applied


def test_data_api_logs_in_with_a_rotated_password_without_a_restart(
    pg_factory: PgFactory, tmp_path: Path
) -> None:
    """The Secret's password changes (as the kubelet updates a mounted Secret) together with the role's: the
    next connection the Data API opens logs in with the new one, in the same pool."""
    pg = pg_factory()
    hba = pg.datadir / "pg_hba.conf"
    hba.write_text("host all rotor 127.0.0.1/32 scram-sha-256\n" + hba.read_text())  # first match wins
    with pg.connect() as conn:
        conn.execute("CREATE ROLE rotor LOGIN PASSWORD 'first-password'")
        conn.execute("SELECT pg_reload_conf()")
    server.write_secret(tmp_path, "demo-app", "rotor", "first-password", "postgres")
    config = Config(
        cluster="demo", host=pg.host, port=pg.port, keys={server.KEY: server.SECRET_KEY},
        secrets_dir=tmp_path,
    )  # fmt: skip
    with server.running(config) as endpoint:
        rds: Any = server.client(endpoint)
        assert run(rds, "SELECT current_user")["records"] == [[{"stringValue": "rotor"}]]
        with pg.connect() as conn:
            conn.execute("ALTER ROLE rotor PASSWORD 'second-password'")
            (tmp_path / "demo-app" / "password").write_text("second-password")
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'rotor'")
        answered = None
        for _ in range(3):  # the pooled connection just terminated may fail once, retryably
            try:
                answered = run(rds, "SELECT current_user")["records"]
                break
            except rds.exceptions.ServiceUnavailableError:
                continue
        assert answered == [[{"stringValue": "rotor"}]]
