"""Regenerate ``postgres15_parameters.json``, the parameter catalog ``aurora_api.pgparams`` checks against.

Why a real server: names, contexts, units and ranges differ between PostgreSQL builds and releases, and the
one true list is ``pg_settings``. This runs ``initdb`` in a temporary directory, starts ``postgres`` on a
Unix socket there (no TCP), reads ``pg_settings`` as the superuser (who sees every parameter), stops the
server and removes the directory. PostgreSQL refuses to run as root: as root, every server command runs as
the ``postgres`` user, as the test fixtures do (``tests/fixtures/postgres.py``).

Some enum parameters accept spellings that ``pg_settings.enumvals`` hides (``synchronous_commit = true``,
``wal_level = hot_standby``, ``client_min_messages = debug``). The server is asked which of these it takes,
with ``ALTER SYSTEM`` (which validates a value for any context but applies nothing): they are recorded as
``enum_aliases``.

Run ``make pg-catalog`` (this script); the output is checked in, like the CRDs. A tool, not part of the
``aurora_api`` package: it starts processes, which the API layer must not.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors, sql

DEFAULT_PG_BIN = pathlib.Path(os.environ.get("QUORUMDB_PG_BIN_DIR", "/usr/lib/postgresql/15/bin"))
DEFAULT_OUT = pathlib.Path(__file__).resolve().parents[1] / "aurora_api" / "postgres15_parameters.json"
PG_USER = "postgres"
PORT = 5432  # only names the socket file, in a private directory
GENERATED_BY = (
    "make pg-catalog (operator/tools/pgcatalog_gen.py, from pg_settings of a temporary server). Do not edit."
)
# Spellings PostgreSQL accepts for some enums without listing them; each is tried against each enum.
BOOL_WORDS = ("on", "off", "true", "false", "yes", "no", "1", "0")
ALIAS_CANDIDATES = (*BOOL_WORDS, "debug", "info", "archive", "hot_standby")
QUERY = "SELECT name, context, vartype, unit, min_val, max_val, enumvals FROM pg_settings ORDER BY name"


def _as_pg(cmd: Sequence[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["setpriv", "--reuid", PG_USER, "--regid", PG_USER, "--init-groups", *cmd]
    return list(cmd)


def _run(cmd: Sequence[str], cwd: pathlib.Path) -> None:
    r = subprocess.run(_as_pg(cmd), cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed ({r.returncode}): {(r.stderr or r.stdout)[-2000:]}")


def _number(text: str | None, vartype: str) -> int | float | None:
    if text is None:
        return None
    return int(text) if vartype == "integer" else float(text)


def entry(
    context: str,
    vartype: str,
    unit: str | None,
    min_val: str | None,
    max_val: str | None,
    enumvals: Sequence[str] | None,
    aliases: Sequence[str] = (),
) -> dict[str, Any]:
    """One parameter's JSON object (its name is the key)."""
    out: dict[str, Any] = {
        "context": context,
        "vartype": vartype,
        "unit": unit,
        "min": _number(min_val, vartype),
        "max": _number(max_val, vartype),
        "enumvals": list(enumvals or ()),
    }
    if aliases:
        out["enum_aliases"] = sorted(aliases)
    return out


def render(server_version: str, server_version_num: int, parameters: dict[str, dict[str, Any]]) -> str:
    """The file's text: valid JSON, sorted keys, one parameter per line (readable diffs)."""
    names = sorted(parameters, key=lambda n: (n.lower(), n))
    lines = [f"  {json.dumps(name)}: {json.dumps(parameters[name], sort_keys=True)}" for name in names]
    return (
        "{\n"
        f' "generated_by": {json.dumps(GENERATED_BY)},\n'
        ' "parameters": {\n' + ",\n".join(lines) + "\n },\n"
        f' "server_version": {json.dumps(server_version)},\n'
        f' "server_version_num": {server_version_num}\n'
        "}\n"
    )


def _aliases(conn: psycopg.Connection[tuple[Any, ...]], name: str, enumvals: Sequence[str]) -> list[str]:
    known = {v.lower() for v in enumvals}
    found = []
    for candidate in ALIAS_CANDIDATES:
        if candidate in known:
            continue
        try:
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), candidate))
        except errors.InvalidParameterValue:
            continue
        except errors.CantChangeRuntimeParam:
            return []  # not settable in a file at all (transaction_isolation): no spelling to record
        found.append(candidate)
    conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
    return found


def read_catalog(conn: psycopg.Connection[tuple[Any, ...]]) -> tuple[str, int, dict[str, dict[str, Any]]]:
    """(server_version, server_version_num, name -> entry) from a running server."""
    version = conn.execute("SHOW server_version").fetchone()
    version_num = conn.execute("SHOW server_version_num").fetchone()
    assert version is not None and version_num is not None
    parameters = {}
    for name, context, vartype, unit, min_val, max_val, enumvals in conn.execute(QUERY).fetchall():
        aliases = _aliases(conn, name, enumvals) if vartype == "enum" and context != "internal" else []
        parameters[name] = entry(context, vartype, unit, min_val, max_val, enumvals, aliases)
    return str(version[0]), int(version_num[0]), parameters


def generate(pg_bin: pathlib.Path) -> str:
    """Run a throwaway server from ``pg_bin`` and return the catalog file's text."""
    if not (pg_bin / "initdb").exists():
        raise RuntimeError(f"no initdb in {pg_bin} (pass --pg-bin)")
    root = pathlib.Path(tempfile.mkdtemp(prefix="quorumdb-pgcatalog-"))
    data = root / "data"
    started = False
    try:
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam(PG_USER)
            except KeyError:
                raise RuntimeError(f"running as root but there is no {PG_USER!r} user for postgres") from None
            os.chown(root, pw.pw_uid, pw.pw_gid)
        initdb = [str(pg_bin / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8"]
        _run([*initdb, "--no-locale", "--no-sync", "--no-instructions"], cwd=root)
        with (data / "postgresql.conf").open("a") as fh:
            fh.write(f"listen_addresses = ''\nunix_socket_directories = '{root}'\nport = {PORT}\n")
        pg_ctl = [str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60"]
        started = True  # from here on, try to stop it even if start reports failure
        _run([*pg_ctl, "start"], cwd=root)
        conninfo = f"host={root} port={PORT} user={PG_USER} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            version, version_num, parameters = read_catalog(conn)
        return render(version, version_num, parameters)
    finally:
        if started:
            stop = [str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
            subprocess.run(_as_pg(stop), cwd=root, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument(
        "--pg-bin", type=pathlib.Path, default=DEFAULT_PG_BIN, help="PostgreSQL bin directory"
    )
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT, help="file to write")
    args = parser.parse_args(argv)
    try:
        text = generate(args.pg_bin)
    except RuntimeError as err:
        sys.stderr.write(f"pgcatalog_gen: {err}\n")
        return 1
    args.out.write_text(text)
    count = len(json.loads(text)["parameters"])
    sys.stderr.write(f"wrote {args.out} ({count} parameters)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
