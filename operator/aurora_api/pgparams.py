"""Every PostgreSQL 15 parameter: does a name exist, would a value parse, does a change need a restart.

Why: a misspelled name or a bad value in ``spec.postgresql.parameters`` would otherwise be found by PostgreSQL
itself, as an instance that refuses to start (or logs and ignores the line) long after the spec was accepted.
Checking up front lets the operator refuse the spec with a sentence naming the parameter, and tell a rolling
restart from a reload. The catalog is ``postgres15_parameters.json``, read from a real server's
``pg_settings`` by ``make pg-catalog`` (``operator/tools/pgcatalog_gen.py``); values are parsed the way
PostgreSQL's ``guc.c`` parses them (``parse_bool``, ``parse_int``/``parse_real`` with unit conversion to the
parameter's base unit, then the ``min_val``/``max_val`` range; enums case-insensitively, including the
spellings ``pg_settings`` hides). Not replicated: the per-parameter check hooks (``search_path`` syntax,
``TimeZone`` names, ...), so a string is accepted as is. Pure: the only I/O is reading that file once.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

PACKAGE = "aurora_api"
CATALOG_FILE = "postgres15_parameters.json"
_MEMORY_BYTES = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME_US = {"us": 1, "ms": 1000, "s": 1000**2, "min": 60 * 1000**2, "h": 3600 * 1000**2, "d": 86400 * 1000**2}
_MEMORY_UNITS = ("TB", "GB", "MB", "kB", "B")  # largest first, as guc.c's tables: a fraction of one is
_TIME_UNITS = ("d", "h", "min", "s", "ms", "us")  # rounded to a whole number of the next smaller one
_MAX_UNIT_LEN = 3  # guc.c reads at most this many characters of a unit
_BOOL_WORDS = ("true", "false", "yes", "no")
# strtol(base 0) and strtod prefixes, as C parses them (leading space, sign, hex, octal, inf/nan).
_SPACE = " \t\n\v\f\r"  # C's isspace
_STRTOL = re.compile(rf"[{_SPACE}]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_HEX_MANTISSA = r"[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+"
_STRTOD_HEX = re.compile(rf"[{_SPACE}]*([+-]?)0[xX]({_HEX_MANTISSA})([pP][+-]?[0-9]+)?")
_STRTOD_DEC = re.compile(rf"[{_SPACE}]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_STRTOD_SPECIAL = re.compile(rf"[{_SPACE}]*([+-]?)(infinity|inf|nan(?:\([0-9A-Za-z_]*\))?)", re.IGNORECASE)
_IDENT = r"[A-Za-z_\u0080-\U0010ffff][A-Za-z_0-9\u0080-\U0010ffff]*"
_CUSTOM_NAME = re.compile(rf"{_IDENT}(?:\.{_IDENT})+")


@dataclass(frozen=True)
class Parameter:
    """One row of ``pg_settings``: ``min``/``max``/``unit`` are in the parameter's base unit."""

    name: str
    context: str
    """internal, postmaster, sighup, superuser-backend, backend, superuser or user."""
    vartype: str
    """bool, integer, real, enum or string."""
    unit: str | None
    """Base unit of an integer or real: B, kB, 8kB, MB, ms, s, min; None when unitless."""
    min: float | None
    max: float | None
    enumvals: tuple[str, ...]
    enum_aliases: tuple[str, ...] = ()
    """Further spellings the server accepts for an enum but does not list (``synchronous_commit = true``)."""


@dataclass(frozen=True)
class Catalog:
    """The whole file: which server it was read from, and its parameters."""

    server_version: str
    parameters: Mapping[str, Parameter]
    """Keyed by the lower-case name."""


def _fold(name: str) -> str:
    """ASCII-only lower case, as PostgreSQL compares parameter names."""
    return name.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")


def _parameter(name: str, raw: Mapping[str, Any]) -> Parameter:
    return Parameter(
        name=name,
        context=raw["context"],
        vartype=raw["vartype"],
        unit=raw["unit"],
        min=raw["min"],
        max=raw["max"],
        enumvals=tuple(raw["enumvals"]),
        enum_aliases=tuple(raw.get("enum_aliases", ())),
    )


@functools.cache
def catalog() -> Catalog:
    """The checked-in catalog, read once."""
    text = resources.files(PACKAGE).joinpath(CATALOG_FILE).read_text(encoding="utf-8")
    raw = json.loads(text)
    params = {_fold(name): _parameter(name, entry) for name, entry in raw["parameters"].items()}
    return Catalog(server_version=raw["server_version"], parameters=params)


def lookup(name: str) -> Parameter | None:
    """The parameter called ``name`` (case-insensitive, as in PostgreSQL); None for unknown or custom ones."""
    return catalog().parameters.get(_fold(name))


def needs_restart(name: str) -> bool:
    """True when a change takes effect only at a postmaster restart; False for unknown or custom names."""
    param = lookup(name)
    return param is not None and param.context == "postmaster"


def check(name: str, value: str) -> str | None:
    """None when PostgreSQL would take ``name = value`` from the configuration, else one sentence why not."""
    param = lookup(name)
    if param is None:
        return _check_name(name)
    if param.context == "internal":
        return f"{name}: read-only parameter, it cannot be set"
    if param.vartype == "bool":
        return None if _parse_bool(value) is not None else f"{name}: {_q(value)} is not a Boolean (on or off)"
    if param.vartype == "enum":
        allowed = {_fold(v) for v in (*param.enumvals, *param.enum_aliases)}
        if _fold(value) in allowed:
            return None
        return f"{name}: {_q(value)} is not one of {', '.join(_q(v) for v in param.enumvals)}"
    if param.vartype in ("integer", "real"):
        return _check_number(name, param, value)
    return None  # string: anything (check hooks not replicated)


def check_all(params: Mapping[str, str]) -> list[str]:
    """The sentences for every refused parameter, sorted by name; empty when all are acceptable."""
    return [msg for name in sorted(params) if (msg := check(name, params[name])) is not None]


def _check_name(name: str) -> str | None:
    if "." in name:
        if _CUSTOM_NAME.fullmatch(name):
            return None  # a placeholder for an extension's parameter: PostgreSQL takes any value
        return f"{_q(name)} is not a valid custom parameter name (identifiers joined by dots, like a.b)"
    params = catalog().parameters
    close = difflib.get_close_matches(_fold(name), list(params), n=1)
    hint = f" (did you mean {params[close[0]].name}?)" if close else ""
    return f"unknown parameter {_q(name)}{hint}"


def _check_number(name: str, param: Parameter, value: str) -> str | None:
    number = _parse_number(value, param)
    if number is None:
        return f"{name}: {_q(value)} is {_expected(param)}"
    shown = value.strip() if value.strip() == _fmt(number, param) else _q(value)
    if param.min is not None and _below(number, param.min, param):
        return f"{name}: {shown} is below its minimum {_amount(param.min, param)}"
    if param.max is not None and _below(param.max, number, param):
        return f"{name}: {shown} is above its maximum {_amount(param.max, param)}"
    return None


def _below(a: float, b: float, param: Parameter) -> bool:
    """a < b; a real's bounds come from pg_settings as %g (6 digits), so a value that prints as its bound is
    taken as equal to it (the server, with the exact bound, decides that case)."""
    if param.vartype == "real":
        return a < b and f"{a:g}" != f"{b:g}"
    return a < b


def _expected(param: Parameter) -> str:
    kind = _unit_kind(param.unit)
    if kind == "memory":
        return "not a valid memory size (e.g. 128MB)"
    if kind == "time":
        return "not a valid duration (e.g. 30s)"
    return "not an integer" if param.vartype == "integer" else "not a number"


def _parse_bool(value: str) -> bool | None:
    """parse_bool: true/false/yes/no and prefixes, on/off (and "of"), 1/0; case-insensitive, no spaces."""
    v = _fold(value)
    if not v:
        return None
    if v in ("1", "0"):
        return v == "1"
    if v[0] == "o":
        if len(v) >= 2 and "on".startswith(v):
            return True
        return False if len(v) >= 2 and "off".startswith(v) else None
    for word in _BOOL_WORDS:
        if word.startswith(v):
            return word in ("true", "yes")
    return None


def _parse_number(value: str, param: Parameter) -> float | None:
    """parse_int / parse_real: the number in the parameter's base unit (an integer rounded), or None."""
    parsed: tuple[float, int] | None
    if param.vartype == "integer":
        n, end = _strtol(value)
        if n is None or value[end : end + 1] in (".", "e", "E"):  # overflow or a fraction: as a double
            parsed = _strtod(value)
        else:
            parsed = (float(n), end) if end else None
    else:
        parsed = _strtod(value)
    if parsed is None:
        return None
    number, end = parsed
    rest = value[end:].strip(_SPACE)
    if rest:
        kind = _unit_kind(param.unit)
        if kind is None or param.unit is None:
            return None  # this parameter takes no unit
        converted = _convert(number, rest, param.unit, kind)
        if converted is None:
            return None
        number = converted
    # An integer past int32 is invalid to PostgreSQL ("Value exceeds integer range"); every bound is within
    # int32, so the range check refuses it too, with a clearer sentence.
    return _rint(number) if param.vartype == "integer" else number


def _strtol(value: str) -> tuple[int | None, int]:
    """C's strtol(value, &end, 0): (number, end); end 0 when no digits, number None when out of a 64-bit long
    (ERANGE)."""
    m = _STRTOL.match(value)
    if m is None:
        return 0, 0
    digits = m.group(2)
    base = 16 if digits[:2].lower() == "0x" else 8 if len(digits) > 1 and digits[0] == "0" else 10
    n = int(digits, base) * (-1 if m.group(1) == "-" else 1)
    return (n if -(2**63) <= n < 2**63 else None), m.end()


def _strtod(value: str) -> tuple[float, int] | None:
    """C's strtod: (value, end) or None for no number, NaN, or a result out of range (ERANGE)."""
    if m := _STRTOD_SPECIAL.match(value):
        if m.group(2).lower().startswith("nan"):
            return None  # guc.c rejects NaN
        return (-math.inf if m.group(1) == "-" else math.inf), m.end()
    if m := _STRTOD_HEX.match(value):
        mantissa = m.group(2)
        number = float.fromhex(f"{m.group(1)}0x{mantissa}{m.group(3) or ''}")
        nonzero = any(c not in "0." for c in mantissa)
    elif m := _STRTOD_DEC.match(value):
        text = m.group(0).strip()
        number = float(text)
        nonzero = any(c in "123456789" for c in re.split("[eE]", text)[0])
    else:
        return None
    if math.isinf(number) or (abs(number) < sys.float_info.min and nonzero):
        return None  # overflow or underflow: ERANGE
    return number, m.end()


def _unit_kind(unit: str | None) -> str | None:
    if unit is None:
        return None
    return "time" if unit in _TIME_US else "memory"


def _base(unit: str, kind: str) -> int:
    """A base unit in bytes or microseconds ("8kB" -> 8192)."""
    if kind == "time":
        return _TIME_US[unit]
    m = re.fullmatch(r"([0-9]*)(B|kB|MB)", unit)
    if m is None:
        raise ValueError(f"unexpected unit {unit!r} in {CATALOG_FILE}")
    return int(m.group(1) or 1) * _MEMORY_BYTES[m.group(2)]


def _convert(number: float, unit: str, base_unit: str, kind: str) -> float | None:
    """convert_to_base_unit: units are case-sensitive; a fraction rounds to the next smaller unit."""
    if len(unit) > _MAX_UNIT_LEN:
        return None
    units, sizes = (_TIME_UNITS, _TIME_US) if kind == "time" else (_MEMORY_UNITS, _MEMORY_BYTES)
    if unit not in units:
        return None
    base = _base(base_unit, kind)
    converted = number * (sizes[unit] / base)
    i = units.index(unit)
    if i + 1 < len(units):
        smaller = sizes[units[i + 1]] / base
        converted = _rint(converted / smaller) * smaller
    return converted


def _rint(x: float) -> float:
    """C's rint (ties to even), leaving infinities alone."""
    return x if math.isinf(x) else float(round(x))


def _fmt(number: float, param: Parameter) -> str:
    return str(int(number)) if param.vartype == "integer" and math.isfinite(number) else f"{number:g}"


def _amount(bound: float, param: Parameter) -> str:
    """A bound with its unit: 262143, 2147483647kB, 1073741823 x 8kB."""
    text = _fmt(bound, param)
    if param.unit is None:
        return text
    return f"{text} x {param.unit}" if param.unit[0].isdigit() else f"{text}{param.unit}"


def _q(text: str) -> str:
    return "'" + text + "'"
