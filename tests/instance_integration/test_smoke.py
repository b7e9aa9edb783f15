"""Bootstrap: the instance manager creates a writer that commits through the storage quorum, and readers."""

from __future__ import annotations

import pytest
from aurora_api import contract

from tests.instance_integration.harness import APP, Bed

pytestmark = pytest.mark.integration


def test_writer_and_readers_bootstrap_and_commit_through_the_quorum(bed: Bed) -> None:
    assert bed.writer is not None
    st = bed.writer.status()
    assert st[contract.InstanceStatusFields.ROLE] == contract.ROLE_WRITER
    assert st[contract.InstanceStatusFields.TERM] == 1
    assert st[contract.InstanceStatusFields.POSTGRES_VERSION].startswith("15")
    with bed.writer.connect(user=APP) as conn:
        conn.execute("CREATE TABLE t (id int)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SHOW synchronous_standby_names").fetchone() == (
            "ANY 4 (storage_0,storage_1,storage_2,storage_3,storage_4,storage_5)",
        )
        checksums = conn.execute("SHOW data_checksums").fetchone()
    assert checksums == ("on",)
    for r in bed.readers():
        r.wait(
            lambda r=r: r.connect().execute("SELECT count(*) FROM t").fetchone() == (1,), 10, "row on reader"
        )
        rs = r.status()
        assert rs[contract.InstanceStatusFields.ROLE] == contract.ROLE_READER
        assert rs[contract.InstanceStatusFields.READY] is True
