"""The Data API's wire format (pure): named parameters become bound placeholders, never SQL text; values and
ARNs parse as boto3 sends them; results encode as boto3 decodes them."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest
from aurora_data_api import wire
from aurora_data_api.wire import DataApiError


def test_named_parameters_become_placeholders_outside_quotes_comments_and_casts() -> None:
    sql = (
        "SELECT :a, ':not', \"col:x\", x::int, $$ :no $$, $t$:no$t$ -- :no\n/* :no */, :b_2 WHERE v LIKE '5%'"
    )
    text, used = wire.placeholders(sql)
    assert used == ["a", "b_2"]
    assert text == (
        "SELECT %(a)s, ':not', \"col:x\", x::int, $$ :no $$, $t$:no$t$ -- :no\n/* :no */, %(b_2)s "
        "WHERE v LIKE '5%%'"
    )
    with pytest.raises(DataApiError, match="no value for parameter"):
        wire.bind("SELECT :a, :b", {"a": 1})


def test_values_parse_with_their_type_hints() -> None:
    params = wire.parameters(
        [
            {"name": "d", "value": {"stringValue": "2026-12-01"}, "typeHint": "DATE"},
            {"name": "n", "value": {"stringValue": "1.50"}, "typeHint": "DECIMAL"},
            {
                "name": "u",
                "value": {"stringValue": "12345678-1234-5678-1234-567812345678"},
                "typeHint": "UUID",
            },
            {"name": "b", "value": {"blobValue": "AAE="}},
            {"name": "z", "value": {"isNull": True}},
            {
                "name": "a",
                "value": {"arrayValue": {"arrayValues": [{"longValues": [1]}, {"longValues": [2]}]}},
            },
        ]
    )
    assert params["d"] == datetime.date(2026, 12, 1) and params["n"] == decimal.Decimal("1.50")
    assert isinstance(params["u"], uuid.UUID) and params["b"] == b"\x00\x01" and params["z"] is None
    assert params["a"] == [[1], [2]]
    for bad in ({"stringValue": "x", "longValue": 1}, {"longValue": "1"}, {"stringValue": 5}):
        with pytest.raises(DataApiError):
            wire.field_value(bad)
    with pytest.raises(DataApiError, match="typeHint DATE"):
        wire.field_value({"stringValue": "yesterday"}, "DATE")


def test_arns_name_a_cluster_or_a_secret() -> None:
    assert wire.arn_name("arn:aws:rds:us-east-1:1:cluster:demo", "cluster") == "demo"
    assert wire.arn_name("arn:aws:secretsmanager:us-east-1:1:secret:demo-app-AbC123", "secret") == "demo-app"
    assert wire.arn_name("demo-app", "secret") == "demo-app"
    with pytest.raises(DataApiError):
        wire.arn_name("arn:aws:rds:us-east-1:1:cluster:demo", "secret")
    with pytest.raises(DataApiError, match="resourceArn is required"):
        wire.arn_name(None, "cluster")


def test_results_encode_like_aws_and_are_limited_to_one_mebibyte() -> None:
    assert wire.encode(None) == {"isNull": True} and wire.encode(True) == {"booleanValue": True}
    assert wire.encode(decimal.Decimal("1.5")) == {"stringValue": "1.5"}
    assert wire.encode(datetime.datetime(2026, 1, 2, 3, 4, 5)) == {"stringValue": "2026-01-02 03:04:05"}
    assert wire.encode([1, None]) == {"arrayValue": {"longValues": [1, None]}}
    columns = [wire.Column("v", "text")]
    big = [("x" * 1000,)] * 1100
    with pytest.raises(DataApiError, match="response size"):
        wire.result(columns, big, 0, metadata=False, as_json=False)
    assert wire.result(columns, [("a",)], 0, metadata=True, as_json=False)["columnMetadata"][0]["type"] == 12


def test_result_set_options_present_numbers_as_asked_and_refuse_unknown_values() -> None:
    as_numbers = wire.ResultOptions.parse({"decimalReturnType": "DOUBLE_OR_LONG"})
    assert wire.encode(decimal.Decimal("1.5"), as_numbers) == {"doubleValue": 1.5}
    assert wire.encode(decimal.Decimal("42.000"), as_numbers) == {"longValue": 42}
    assert wire.encode(decimal.Decimal("NaN"), as_numbers) == {"stringValue": "NaN"}
    assert wire.encode([decimal.Decimal("2.5")], as_numbers) == {"arrayValue": {"doubleValues": [2.5]}}
    longs = wire.ResultOptions.parse({"longReturnType": "STRING"})
    assert wire.encode(7, longs) == {"stringValue": "7"}
    assert wire.encode(True, longs) == {"booleanValue": True}
    assert wire.encode(decimal.Decimal("1.5"), longs) == {"stringValue": "1.5"}  # the default for decimals
    both = wire.ResultOptions.parse({"decimalReturnType": "DOUBLE_OR_LONG", "longReturnType": "STRING"})
    assert wire.encode(decimal.Decimal("3"), both) == {"stringValue": "3"}
    columns = [wire.Column("n", "numeric")]
    rows = [(decimal.Decimal("0.25"),)]
    out = wire.result(columns, rows, 0, metadata=False, as_json=True, options=as_numbers)
    assert out["formattedRecords"] == '[{"n": 0.25}]'
    assert wire.ResultOptions.parse(None) == wire.ResultOptions()
    for bad in ({"decimalReturnType": "FLOAT"}, {"longReturnType": "INT"}, {"other": 1}, "STRING"):
        with pytest.raises(DataApiError, match=r"resultSetOptions|ReturnType"):
            wire.ResultOptions.parse(bad)
