"""Storage nodes' control endpoints over HTTPS: verified by the cluster's CA, and repair runs over it.

Prose: six real storage node processes get the control certificate the operator issues
(``aurora_operator.certs``, written as the pods mount it, named by ``QUORUMDB_CONTROL_TLS_DIR``). They serve
HTTPS only: a client holding the cluster's CA reads the quorum and changes terms; plain HTTP gets no answer,
and a client trusting another CA refuses them. A node then loses its volume and rebuilds every completed
segment from its peers, over HTTPS, each peer verified by the same CA.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import httpx
import pytest
from aurora_api import contract, https
from aurora_api.contract import TLS_CA, TLS_CERT, TLS_KEY
from aurora_operator import certs

from tests.fixtures.storage import StorageCluster, StorageFactory

pytestmark = pytest.mark.integration


def _mounted(directory: Path) -> tuple[Path, bytes]:
    """The control certificate's Secret as a pod mounts it; and the CA's certificate."""
    now = datetime.datetime.now(datetime.UTC)
    ca = certs.issue_ca("cluster-ca", now)
    pair = certs.issue_server(ca, ["demo.db.control.quorumdb.internal"], now)
    directory.mkdir()
    for name, body in ((TLS_CERT, pair.cert), (TLS_KEY, pair.key), (TLS_CA, ca.cert)):
        (directory / name).write_bytes(body)
    return directory, ca.cert


def _completed(sc: StorageCluster, i: int) -> set[str]:
    files = sc.http.get(sc.urls[i] + contract.StoragePaths.SEGMENTS).json()["files"]
    return {f["name"] for f in files if f["kind"] == "segment" and f["sha256"]}


def test_storage_nodes_serve_https_verified_by_the_cluster_ca_and_repair_over_it(
    storage_factory: StorageFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounted, ca = _mounted(tmp_path / "control-tls")
    monkeypatch.setenv(contract.Env.CONTROL_TLS_DIR, str(mounted))  # this process's clients, as in a pod
    sc = storage_factory(env={contract.Env.CONTROL_TLS_DIR: str(mounted)})
    assert all(url.startswith("https://") for url in sc.urls)
    with sc.client() as client:
        assert len(client.read_quorum().nodes) >= contract.READ_QUORUM
    assert sc.set_term(0, sc.term).status_code == 200

    with pytest.raises(httpx.HTTPError):  # plain HTTP: no answer
        httpx.get(sc.urls[0].replace("https://", "http://") + contract.StoragePaths.LIVENESS, timeout=3)
    other = certs.issue_ca("another-ca", datetime.datetime.now(datetime.UTC)).cert
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(sc.urls[0] + contract.StoragePaths.LIVENESS, verify=https.ca_context(other), timeout=3)
    trusted = httpx.get(sc.urls[0] + contract.StoragePaths.LIVENESS, verify=https.ca_context(ca))
    assert trusted.status_code == 200

    # Completed segments on every node, then one node's volume lost: it rebuilds from its peers.
    with sc.writer.connect() as conn:
        for _ in range(3):
            conn.execute("CREATE TABLE IF NOT EXISTS t (v text); INSERT INTO t SELECT repeat('x', 1000)")
            conn.execute("SELECT pg_switch_wal()")
    victim = 2
    sc.wait(lambda: len(_completed(sc, victim)) >= 2, 30, "completed segments on the victim")
    held = _completed(sc, victim)
    sc.kill(victim)
    sc.wipe(victim)
    sc.start(victim)
    sc.wait(lambda: bool(sc.status(victim)["healthy"]), 60, "the wiped node to finish repairing")
    repair = sc.status(victim)["repair"]
    assert held <= _completed(sc, victim) and repair["fetched_files"] >= len(held), repair
    assert "CERTIFICATE_VERIFY_FAILED" not in sc.log(victim)
