"""Storage nodes check the writer's certificate: streams with the cluster's CA, nothing with another.

Prose: a real writer serves TLS with a certificate issued by the operator's own code
(``aurora_operator.certs``) from a CA made for this test. Five storage node processes are started as pods
are, with ``QUORUMDB_STORAGE_WRITER_CA_FILE`` naming that CA: they stream, over TLS (``pg_stat_ssl``). The
sixth is given another CA's bundle: libpq refuses the writer's certificate, the node says so in its log, and
it never streams. Without this, a node would store the WAL of any server that answered at the writer's
address.
"""

from __future__ import annotations

import datetime
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from aurora_api import contract
from aurora_operator import certs

from tests.fixtures.postgres import PG_USER
from tests.fixtures.storage import StorageFactory

pytestmark = pytest.mark.integration


@pytest.fixture
def cert_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="quorumdb-writer-tls-"))
    d.chmod(0o755)  # PostgreSQL, running as its own user, reads the certificate and key here
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _write(path: Path, body: bytes, mode: int = 0o644) -> str:
    path.write_bytes(body)
    path.chmod(mode)
    if os.geteuid() == 0:
        pw = pwd.getpwnam(PG_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return str(path)


def test_storage_nodes_stream_only_from_a_writer_whose_certificate_chains_to_the_cluster_ca(
    storage_factory: StorageFactory, cert_dir: Path
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    ca, other = certs.issue_ca("writer-ca", now), certs.issue_ca("another-ca", now)
    server = certs.issue_server(ca, ["localhost"], now)
    settings = {
        "ssl": "on",
        "ssl_cert_file": _write(cert_dir / "server.crt", server.cert),
        "ssl_key_file": _write(cert_dir / "server.key", server.key, 0o600),
    }
    right, wrong = _write(cert_dir / "ca.crt", ca.cert), _write(cert_dir / "other.crt", other.cert)
    sc = storage_factory(start_nodes=False, writer_settings=settings)
    sc.env[contract.EnvStorage.WRITER_CA_FILE] = right
    for i in range(contract.STORAGE_NODES - 1):
        sc.start(i)
    sc.env[contract.EnvStorage.WRITER_CA_FILE] = wrong
    sc.start(contract.STORAGE_NODES - 1)
    sc.wait_streaming(contract.STORAGE_NODES - 1)

    refused = f"{contract.STORAGE_SLOT_PREFIX}{contract.STORAGE_NODES - 1}"
    sc.wait(
        lambda: "certificate verify failed" in sc.log(contract.STORAGE_NODES - 1).lower(),
        30,
        "the node given another CA to report the writer's certificate refused",
    )
    with sc.writer.connect() as conn:
        rows = conn.execute(
            "SELECT r.application_name, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) "
            "WHERE r.application_name LIKE 'storage\\_%%'"
        ).fetchall()
    streams = {str(name): bool(ssl) for name, ssl in rows}
    assert len(streams) == contract.STORAGE_NODES - 1 and all(streams.values()), streams
    assert refused not in streams
    assert "sslmode=verify-ca" in sc.log(0)
