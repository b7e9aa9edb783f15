"""The resume proxy's view of who writes and who reads, from the managers' reports."""

from __future__ import annotations

import pytest
from aurora_api import contract
from aurora_api.reports import InstanceReport, Intent
from aurora_proxy.directory import Address, parse_instances, roles


def report(role: str, term: int) -> InstanceReport:
    return InstanceReport(intent=Intent(role=role, term=term, writer=None))


def test_instances_parse_with_default_or_explicit_ports() -> None:
    assert parse_instances("a-0, b-1:6000:6001") == [
        Address("a-0", contract.POSTGRES_PORT, contract.INSTANCE_HTTP_PORT),
        Address("b-1", 6000, 6001),
    ]
    for bad in ("", "a:1", "a:x:2"):
        with pytest.raises(ValueError):
            parse_instances(bad)


def test_the_highest_term_writes_and_a_former_writer_is_not_a_reader() -> None:
    a, b, c, d = (Address(n) for n in "abcd")
    found = roles(
        {
            a: report(contract.ROLE_WRITER, 2),  # deposed, not yet told
            b: report(contract.ROLE_WRITER, 3),
            c: report(contract.ROLE_READER, 3),
            d: None,  # not answering
        }
    )
    assert found.writer == b
    assert found.readers == (c,)
    assert roles({a: None}).writer is None
