"""The audited workload's log, parsed: errors before the first acknowledged commit are the client's start."""

from __future__ import annotations

from workload import AuditLog


def test_errors_count_from_the_first_acknowledged_commit() -> None:
    text = "\n".join([
        "start 1 1",
        "err 100.0 OperationalError: Connection refused",  # the new pod not admitted yet
        "conn 100.5 10.96.0.1",
        "ack 1 101.0",
        "err 105.0 OperationalError: server closed the connection",
        "ack 2 106.0",
        "",
    ])  # fmt: skip
    log = AuditLog.parse(text)
    assert len(log.errors) == 2
    assert log.serving_errors == [(105.0, "OperationalError: server closed the connection")]
    assert AuditLog.parse("err 1.0 x\n").serving_errors == []  # never served: nothing to judge yet
