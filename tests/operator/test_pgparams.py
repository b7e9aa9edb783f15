"""The PostgreSQL 15 parameter catalog refuses what the server would, with a sentence naming the parameter."""

from __future__ import annotations

import pytest
from aurora_api import pgparams


def test_catalog_comes_from_postgresql_15() -> None:
    cat = pgparams.catalog()
    assert cat.server_version.startswith("15.")
    assert len(cat.parameters) > 300
    sb = pgparams.lookup("shared_buffers")
    assert sb == pgparams.Parameter("shared_buffers", "postmaster", "integer", "8kB", 16, 1073741823, ())
    wal_level = pgparams.lookup("wal_level")
    assert wal_level is not None and wal_level.enumvals == ("minimal", "replica", "logical")


def test_lookup_is_case_insensitive() -> None:
    assert (p := pgparams.lookup("Shared_Buffers")) is not None and p.name == "shared_buffers"
    assert (p := pgparams.lookup("datestyle")) is not None and p.name == "DateStyle"
    assert pgparams.lookup("shard_buffers") is None
    assert pgparams.lookup("pg_stat_statements.track") is None


@pytest.mark.parametrize(
    ("name", "restart"),
    [
        ("shared_buffers", True),
        ("SHARED_BUFFERS", True),
        ("wal_level", True),
        ("max_connections", True),
        ("work_mem", False),
        ("max_wal_size", False),  # sighup
        ("server_version", False),  # internal: never changes at all
        ("shard_buffers", False),
        ("pg_stat_statements.track", False),
    ],
)
def test_needs_restart(name: str, restart: bool) -> None:
    assert pgparams.needs_restart(name) is restart


BOOL_SPELLINGS = [
    "on",
    "off",
    "ON",
    "Off",
    "of",
    "true",
    "t",
    "TR",
    "false",
    "f",
    "yes",
    "y",
    "no",
    "N",
    "1",
    "0",
]


@pytest.mark.parametrize("value", BOOL_SPELLINGS)
def test_bool_accepts_postgresql_spellings(value: str) -> None:
    assert pgparams.check("jit", value) is None


@pytest.mark.parametrize("value", ["o", "2", "10", "", " on", "on ", "enable", "truth"])
def test_bool_refuses_the_rest(value: str) -> None:
    assert pgparams.check("jit", value) == f"jit: '{value}' is not a Boolean (on or off)"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("shared_buffers", "128MB"),
        ("shared_buffers", "128 MB"),
        ("shared_buffers", "1GB"),
        ("shared_buffers", "0.5GB"),
        ("shared_buffers", "16384"),  # no unit: the base unit, 8kB pages
        ("shared_buffers", "8191GB"),  # under the maximum once converted to pages
        ("work_mem", "4MB"),
        ("work_mem", "64kB"),
        ("work_mem", "1.5MB"),
        ("work_mem", "65536B"),
        ("max_wal_size", "1GB"),
        ("statement_timeout", "0"),
        ("statement_timeout", "250ms"),
        ("statement_timeout", "30s"),
        ("statement_timeout", "5min"),
        ("statement_timeout", "1h"),
        ("statement_timeout", "1d"),
        ("checkpoint_timeout", "5min"),
        ("checkpoint_timeout", "300"),
        ("checkpoint_timeout", "30000ms"),
        ("log_rotation_age", "1d"),  # base unit min
        ("max_connections", "100"),
        ("max_connections", "1.5"),  # rounded, as parse_int does
        ("max_connections", "0x10"),  # strtol base 0
        ("max_connections", "1e3"),
    ],
)
def test_integer_accepts_units_and_forms_postgresql_takes(name: str, value: str) -> None:
    assert pgparams.check(name, value) is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "shared_buffers",
            "12 apples",
            "shared_buffers: '12 apples' is not a valid memory size (e.g. 128MB)",
        ),
        ("shared_buffers", "128mb", "shared_buffers: '128mb' is not a valid memory size (e.g. 128MB)"),
        ("work_mem", "4 M", "work_mem: '4 M' is not a valid memory size (e.g. 128MB)"),
        ("work_mem", "MB", "work_mem: 'MB' is not a valid memory size (e.g. 128MB)"),
        ("work_mem", "4s", "work_mem: '4s' is not a valid memory size (e.g. 128MB)"),
        (
            "statement_timeout",
            "5 minutes",
            "statement_timeout: '5 minutes' is not a valid duration (e.g. 30s)",
        ),
        ("statement_timeout", "5m", "statement_timeout: '5m' is not a valid duration (e.g. 30s)"),
        ("statement_timeout", "1GB", "statement_timeout: '1GB' is not a valid duration (e.g. 30s)"),
        ("max_connections", "100MB", "max_connections: '100MB' is not an integer"),
        ("max_connections", "many", "max_connections: 'many' is not an integer"),
        ("max_connections", "08", "max_connections: '08' is not an integer"),  # octal, as strtol reads it
        ("max_connections", "inf", "max_connections: 'inf' is not an integer"),
    ],
)
def test_integer_refuses_bad_syntax_and_units(name: str, value: str, message: str) -> None:
    assert pgparams.check(name, value) == message


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("max_connections", "100000000", "max_connections: 100000000 is above its maximum 262143"),
        ("max_connections", "0", "max_connections: 0 is below its minimum 1"),
        ("max_connections", "3000000000", "max_connections: 3000000000 is above its maximum 262143"),
        ("work_mem", "63kB", "work_mem: '63kB' is below its minimum 64kB"),
        ("work_mem", "1B", "work_mem: '1B' is below its minimum 64kB"),  # 1/1024 kB rounds to 0
        ("work_mem", "3TB", "work_mem: '3TB' is above its maximum 2147483647kB"),
        ("shared_buffers", "9TB", "shared_buffers: '9TB' is above its maximum 1073741823 x 8kB"),
        ("shared_buffers", "15", "shared_buffers: 15 is below its minimum 16 x 8kB"),
        ("checkpoint_timeout", "29s", "checkpoint_timeout: '29s' is below its minimum 30s"),
        ("checkpoint_timeout", "2d", "checkpoint_timeout: '2d' is above its maximum 86400s"),
    ],
)
def test_integer_range_is_checked_in_the_base_unit(name: str, value: str, message: str) -> None:
    assert pgparams.check(name, value) == message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("random_page_cost", "1.1"),
        ("random_page_cost", "4"),
        ("random_page_cost", "1e2"),
        ("checkpoint_completion_target", "0.9"),
        ("checkpoint_completion_target", "1"),
        ("vacuum_cost_delay", "2"),  # base unit ms
        ("vacuum_cost_delay", "2ms"),
        ("vacuum_cost_delay", "2 ms"),
        ("vacuum_cost_delay", "500us"),
        ("vacuum_cost_delay", "0.1s"),
        ("autovacuum_vacuum_cost_delay", "-1"),
    ],
)
def test_real_accepts_numbers_and_time_units(name: str, value: str) -> None:
    assert pgparams.check(name, value) is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("random_page_cost", "fast", "random_page_cost: 'fast' is not a number"),
        ("random_page_cost", "1.1x", "random_page_cost: '1.1x' is not a number"),
        ("random_page_cost", "nan", "random_page_cost: 'nan' is not a number"),
        ("random_page_cost", "-1", "random_page_cost: -1 is below its minimum 0"),
        ("random_page_cost", "inf", "random_page_cost: inf is above its maximum 1.79769e+308"),
        ("checkpoint_completion_target", "1.5", "checkpoint_completion_target: 1.5 is above its maximum 1"),
        ("vacuum_cost_delay", "2 apples", "vacuum_cost_delay: '2 apples' is not a valid duration (e.g. 30s)"),
        ("vacuum_cost_delay", "1s", "vacuum_cost_delay: '1s' is above its maximum 100ms"),
        ("vacuum_cost_delay", "101", "vacuum_cost_delay: 101 is above its maximum 100ms"),
    ],
)
def test_real_refuses_bad_numbers_and_ranges(name: str, value: str, message: str) -> None:
    assert pgparams.check(name, value) == message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("wal_level", "replica"),
        ("wal_level", "LOGICAL"),
        ("wal_level", "hot_standby"),  # hidden from pg_settings.enumvals, still accepted by the server
        ("synchronous_commit", "remote_apply"),
        ("synchronous_commit", "true"),  # likewise
        ("log_min_messages", "Debug"),
        ("default_transaction_isolation", "read committed"),
        ("password_encryption", "SCRAM-SHA-256"),
    ],
)
def test_enum_accepts_values_case_insensitively(name: str, value: str) -> None:
    assert pgparams.check(name, value) is None


def test_enum_refuses_other_values_and_lists_the_valid_ones() -> None:
    assert (
        pgparams.check("wal_level", "full")
        == "wal_level: 'full' is not one of 'minimal', 'replica', 'logical'"
    )
    assert pgparams.check("wal_level", " replica") is not None
    assert pgparams.check("huge_pages", "maybe") == "huge_pages: 'maybe' is not one of 'off', 'on', 'try'"


@pytest.mark.parametrize(
    ("name", "value"),
    [("search_path", '"$user", public'), ("application_name", ""), ("archive_command", "/bin/true %p"),
     ("shared_preload_libraries", "pg_stat_statements,auto_explain")],
)  # fmt: skip
def test_string_accepts_anything(name: str, value: str) -> None:
    assert pgparams.check(name, value) is None


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("shard_buffers", "unknown parameter 'shard_buffers' (did you mean shared_buffers?)"),
        ("work_memory", "unknown parameter 'work_memory' (did you mean work_mem?)"),
        ("datestyl", "unknown parameter 'datestyl' (did you mean DateStyle?)"),
        ("xyzzy", "unknown parameter 'xyzzy'"),
    ],
)
def test_unknown_names_are_refused_with_a_suggestion(name: str, message: str) -> None:
    assert pgparams.check(name, "1") == message


@pytest.mark.parametrize(
    ("name", "value"),
    [("pg_stat_statements.track", "all"), ("pg_stat_statements.max", "not even a number"),
     ("auto_explain.log_min_duration", "250ms"), ("my_ext.deep.name", ""), ("Custom.Name_2", "x")],
)  # fmt: skip
def test_custom_dotted_names_are_placeholders_taking_any_value(name: str, value: str) -> None:
    assert pgparams.check(name, value) is None
    assert pgparams.needs_restart(name) is False


@pytest.mark.parametrize("name", ["pg_stat_statements.", ".track", "a..b", "1ext.track", "my-ext.track"])
def test_malformed_custom_names_are_refused(name: str) -> None:
    assert pgparams.check(name, "x") == (
        f"'{name}' is not a valid custom parameter name (identifiers joined by dots, like a.b)"
    )


@pytest.mark.parametrize("name", ["server_version", "block_size", "wal_segment_size", "data_checksums"])
def test_internal_parameters_cannot_be_set(name: str) -> None:
    assert pgparams.check(name, "1") == f"{name}: read-only parameter, it cannot be set"


def test_names_and_values_are_case_insensitive_and_messages_use_the_given_name() -> None:
    assert pgparams.check("Shared_Buffers", "128MB") is None
    assert pgparams.check("WAL_LEVEL", "Replica") is None
    assert pgparams.check("TimeZone", "UTC") is None and pgparams.check("timezone", "UTC") is None
    assert pgparams.check("MAX_CONNECTIONS", "0") == "MAX_CONNECTIONS: 0 is below its minimum 1"


def test_check_all_reports_every_refusal_sorted_by_name() -> None:
    params = {
        "shard_buffers": "128MB",
        "work_mem": "4MB",
        "max_connections": "100000000",
        "jit": "maybe",
        "pg_stat_statements.track": "all",
    }
    assert pgparams.check_all(params) == [
        "jit: 'maybe' is not a Boolean (on or off)",
        "max_connections: 100000000 is above its maximum 262143",
        "unknown parameter 'shard_buffers' (did you mean shared_buffers?)",
    ]
    assert pgparams.check_all({}) == []
    assert pgparams.check_all({"work_mem": "4MB", "wal_level": "logical"}) == []


def test_every_catalog_bound_is_accepted_and_just_past_it_refused() -> None:
    """Every unit in the catalog is one the parser knows, and ranges are inclusive."""
    for param in pgparams.catalog().parameters.values():
        if param.context == "internal" or param.vartype not in ("integer", "real"):
            continue
        assert param.min is not None and param.max is not None
        for bound in (param.min, param.max):
            text = str(int(bound)) if param.vartype == "integer" else f"{bound:g}"
            assert pgparams.check(param.name, text) is None, (param.name, text)
        if param.vartype == "integer":
            assert pgparams.check(param.name, str(int(param.min) - 1)) is not None, param.name
            assert pgparams.check(param.name, str(int(param.max) + 1)) is not None, param.name
