"""The RDS Data API's JSON wire format, both ways. Pure.

Why pure: the format is the contract with boto3 (``botocore/data/rds-data/2018-08-01``), and each rule is a
unit test on literal JSON: named parameters (``:name`` in the SQL) become bound placeholders, never text;
typed values (``stringValue``, ``longValue``, ... with ``typeHint``) become Python values psycopg adapts;
result values and column metadata are encoded the way boto3 decodes them; errors carry the AWS error code.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

MAX_RESPONSE_BYTES = 1 << 20
"""AWS: a result larger than 1 MiB is refused."""
STATEMENT_TIMEOUT_SECONDS = 45.0
"""AWS: a call waits at most this long for its statement."""


class DataApiError(Exception):
    """An error as AWS shapes it: the code is the exception boto3 raises (``x-amzn-ErrorType``)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def body(self) -> dict[str, str]:
        return {"message": self.message}


def flag(body: dict[str, Any], name: str) -> bool:
    """A boolean request member (absent: false); anything but a boolean is a bad request."""
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise bad_request(f"{name} must be a boolean")
    return value


def records_as_json(value: object) -> bool:
    """``formatRecordsAs``: NONE (the default) or JSON."""
    if value in (None, "NONE"):
        return False
    if value == "JSON":
        return True
    raise bad_request(f"formatRecordsAs must be NONE or JSON, not {str(value)[:50]!r}")


def bad_request(message: str) -> DataApiError:
    return DataApiError("BadRequestException", message)


# --- requests -----------------------------------------------------------------------------------------

_ARN = re.compile(
    r"^arn:[^:]*:(?P<service>[^:]*):[^:]*:[^:]*:(?P<kind>cluster|secret):(?P<name>[^:]+?)(-[A-Za-z0-9]{6})?$"
)


def arn_name(arn: object, kind: str) -> str:
    """The cluster (``arn:aws:rds:region:account:cluster:NAME``) or secret
    (``arn:aws:secretsmanager:region:account:secret:NAME[-suffix]``) an ARN names; a plain name is taken
    as is."""
    if not isinstance(arn, str) or not arn:
        raise bad_request(f"{'resourceArn' if kind == 'cluster' else 'secretArn'} is required")
    if not arn.startswith("arn:"):
        return arn
    m = _ARN.match(arn)
    if m is None or m.group("kind") != kind:
        raise bad_request(f"not a {kind} ARN: {arn!r}")
    return m.group("name")


def _scan(sql: str) -> list[tuple[int, int, str]]:
    """(start, end, name) of every ``:name`` outside quotes, comments and ``::`` casts."""
    found = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            end = sql.find(ch, i + 1)
            while end != -1 and end + 1 < n and sql[end + 1] == ch:  # doubled quote
                end = sql.find(ch, end + 2)
            i = n if end == -1 else end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end == -1 else end + 2
        elif ch == "$" and (m := re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])):
            tag = m.group(0)
            end = sql.find(tag, i + len(tag))
            i = n if end == -1 else end + len(tag)
        elif sql.startswith("::", i):
            i += 2
        elif ch == ":" and (m := re.match(r":([A-Za-z_][A-Za-z0-9_]*)", sql[i:])):
            found.append((i, i + len(m.group(0)), m.group(1)))
            i += len(m.group(0))
        else:
            i += 1
    return found


def placeholders(sql: str) -> tuple[str, list[str]]:
    """The SQL with each ``:name`` as psycopg's ``%(name)s`` (and a literal ``%`` doubled), and the names
    used. The values are sent separately (bound): nothing a caller passes becomes SQL text."""
    out, names, last = [], [], 0
    for start, end, name in _scan(sql):
        out.append(sql[last:start].replace("%", "%%"))
        out.append(f"%({name})s")
        names.append(name)
        last = end
    out.append(sql[last:].replace("%", "%%"))
    return "".join(out), names


_HINTS: dict[str, Any] = {
    "DATE": datetime.date.fromisoformat,
    "TIME": datetime.time.fromisoformat,
    "TIMESTAMP": datetime.datetime.fromisoformat,
    "DECIMAL": decimal.Decimal,
    "UUID": uuid.UUID,
}


def field_value(field: object, hint: str | None = None) -> Any:
    """A ``Field`` (one of its members set) as the Python value psycopg binds."""
    if not isinstance(field, dict) or len(field) != 1:
        raise bad_request(f"a value must set exactly one member: {field!r}")
    ((kind, value),) = field.items()
    if kind == "isNull":
        return None
    if kind == "stringValue" and isinstance(value, str):
        if hint == "JSON":
            from psycopg.types.json import Jsonb

            try:
                return Jsonb(json.loads(value))
            except ValueError as err:
                raise bad_request(f"typeHint JSON: {err}") from err
        if hint is not None:
            if hint not in _HINTS:
                raise bad_request(f"unknown typeHint {hint!r}")
            try:
                return _HINTS[hint](value)
            except (ValueError, decimal.InvalidOperation) as err:
                raise bad_request(f"typeHint {hint}: {value!r}: {err}") from err
        return value
    if kind == "longValue" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "doubleValue" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "booleanValue" and isinstance(value, bool):
        return value
    if kind == "blobValue" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as err:
            raise bad_request(f"blobValue is not base64: {err}") from err
    if kind == "arrayValue" and isinstance(value, dict):
        return _array(value)
    raise bad_request(f"unsupported value {field!r}")


_ARRAY_ITEMS: dict[str, tuple[type, ...]] = {
    "stringValues": (str,), "longValues": (int,), "doubleValues": (int, float), "booleanValues": (bool,),
}  # fmt: skip


def _array(value: object) -> list[Any]:
    if not isinstance(value, dict) or len(value) != 1:
        raise bad_request(f"an array must be an object with exactly one member: {str(value)[:200]}")
    ((kind, items),) = value.items()
    if not isinstance(items, list):
        raise bad_request(f"{kind} must be a list")
    if kind == "arrayValues":
        return [_array(v) for v in items]
    types = _ARRAY_ITEMS.get(kind)
    if types is None:
        raise bad_request(f"unsupported array member {kind!r}")
    exact_bool = kind == "booleanValues"
    if not all(isinstance(x, types) and (exact_bool or not isinstance(x, bool)) for x in items):
        raise bad_request(f"{kind} holds a value of another type")
    return list(items)


def parameters(raw: object) -> dict[str, Any]:
    """``SqlParameter`` list -> {name: value}."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise bad_request("parameters must be a list")
    found: dict[str, Any] = {}
    for p in raw:
        if not isinstance(p, dict) or not isinstance(p.get("name"), str) or "value" not in p:
            raise bad_request(f"a parameter needs a name and a value: {p!r}")
        found[p["name"]] = field_value(p["value"], p.get("typeHint"))
    return found


def bind(sql: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    text, used = placeholders(sql)
    missing = sorted(set(used) - set(params))
    if missing:
        raise bad_request(f"no value for parameter(s) {', '.join(missing)}")
    return text, {name: params[name] for name in used}


# --- results ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultOptions:
    """``resultSetOptions``: decimals as strings (AWS's default) or as numbers (``DOUBLE_OR_LONG``: a long
    when integral, else a double), longs as longs (default) or as strings (``STRING``)."""

    decimal_as_number: bool = False
    long_as_string: bool = False

    @classmethod
    def parse(cls, raw: object) -> ResultOptions:
        if raw is None:
            return cls()
        if not isinstance(raw, dict) or set(raw) - {"decimalReturnType", "longReturnType"}:
            raise bad_request("resultSetOptions takes decimalReturnType and longReturnType only")
        decimals, longs = raw.get("decimalReturnType", "STRING"), raw.get("longReturnType", "LONG")
        if decimals not in ("STRING", "DOUBLE_OR_LONG"):
            raise bad_request(f"decimalReturnType must be STRING or DOUBLE_OR_LONG, not {decimals!r}")
        if longs not in ("LONG", "STRING"):
            raise bad_request(f"longReturnType must be LONG or STRING, not {longs!r}")
        return cls(decimals == "DOUBLE_OR_LONG", longs == "STRING")

    def number(self, value: Any) -> Any:
        """A value as these options present numbers (others unchanged)."""
        if isinstance(value, decimal.Decimal) and self.decimal_as_number and value.is_finite():
            value = int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, int) and not isinstance(value, bool) and self.long_as_string:
            return str(value)
        return value


DEFAULT_OPTIONS = ResultOptions()


def encode(value: Any, options: ResultOptions = DEFAULT_OPTIONS) -> dict[str, Any]:
    """A result value as a ``Field``: what boto3 decodes back (dates, numerics, UUIDs, JSON as strings,
    like AWS; numbers as ``options`` say)."""
    value = options.number(value)
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"blobValue": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, list):
        return {"arrayValue": _encode_array([options.number(v) for v in value])}
    return {"stringValue": text(value)}


def _encode_array(items: list[Any]) -> dict[str, Any]:
    if any(isinstance(v, list) for v in items):
        return {"arrayValues": [_encode_array(v) for v in items]}
    kinds = {type(v) for v in items if v is not None}
    if kinds <= {bool} and kinds:
        return {"booleanValues": items}
    if kinds <= {int} and kinds:
        return {"longValues": items}
    if kinds <= {float, int} and kinds:
        return {"doubleValues": [float(v) if v is not None else None for v in items]}
    return {"stringValues": [None if v is None else text(v) for v in items]}


def text(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def plain(value: Any, options: ResultOptions = DEFAULT_OPTIONS) -> Any:
    """A result value for ``formatRecordsAs: JSON``."""
    value = options.number(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (dict, list)):
        return value
    return text(value)


JDBC_TYPES = {
    "bool": -7, "int2": 5, "int4": 4, "int8": -5, "float4": 7, "float8": 8, "numeric": 2, "text": 12,
    "varchar": 12, "bpchar": 1, "name": 12, "bytea": -2, "date": 91, "time": 92, "timetz": 2013,
    "timestamp": 93, "timestamptz": 93, "uuid": 1111, "json": 1111, "jsonb": 1111,
}  # fmt: skip
"""java.sql.Types of PostgreSQL types, as the RDS Data API reports them (arrays: 2003)."""


@dataclass(frozen=True)
class Column:
    name: str
    type_name: str
    precision: int | None = None
    scale: int | None = None

    def metadata(self) -> dict[str, Any]:
        array = self.type_name.startswith("_")
        base = self.type_name[1:] if array else self.type_name
        found: dict[str, Any] = {
            "name": self.name, "label": self.name, "typeName": self.type_name,
            "type": 2003 if array else JDBC_TYPES.get(base, 1111), "nullable": 2,
            "isSigned": base in ("int2", "int4", "int8", "float4", "float8", "numeric"),
            "isCaseSensitive": base in ("text", "varchar", "bpchar", "name"),
            "precision": self.precision or 0, "scale": self.scale or 0,
            "schemaName": "", "tableName": "", "isAutoIncrement": False, "isCurrency": False,
        }  # fmt: skip
        if array:
            found["arrayBaseColumnType"] = JDBC_TYPES.get(base, 1111)
        return found


def result(
    columns: list[Column] | None,
    rows: list[tuple[Any, ...]],
    updated: int,
    *,
    metadata: bool,
    as_json: bool,
    options: ResultOptions = DEFAULT_OPTIONS,
) -> dict[str, Any]:
    """The ``ExecuteStatementResponse``; ``BadRequestException`` past ``MAX_RESPONSE_BYTES``."""
    body: dict[str, Any] = {"numberOfRecordsUpdated": updated, "generatedFields": []}
    if columns is not None:
        if as_json:
            names = [c.name for c in columns]
            body["formattedRecords"] = json.dumps(
                [dict(zip(names, (plain(v, options) for v in row), strict=True)) for row in rows]
            )
        else:
            body["records"] = [[encode(v, options) for v in row] for row in rows]
            if metadata:
                body["columnMetadata"] = [c.metadata() for c in columns]
    if len(json.dumps(body)) > MAX_RESPONSE_BYTES:
        raise bad_request("Database returned more than the allowed response size limit")
    return body
