"""An object store behind a private CA (``objectStore.caSecret``): trusted with its bundle, refused without.

Prose: a real MinIO serves TLS with a certificate signed by a CA made for this test (openssl: a CA, then a
leaf for 127.0.0.1 signed by it). The storage engine's ``Archive`` (every pod's client, built from the
environment the operator renders: ``QUORUMDB_S3_CA_FILE``) and the operator's ``ObjectStore`` (given the
bundle from the Secret) round-trip objects when given the CA; with the system's CAs or another CA's bundle
every call fails with a certificate error, and nothing is written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import botocore.exceptions  # type: ignore[import-untyped]
import pytest
from aurora_api import contract
from aurora_api.v1alpha1.cluster import ObjectStoreSpec
from aurora_operator import objectstore
from aurora_storage import s3

from tests.fixtures import availability
from tests.fixtures.s3server import ACCESS_KEY, SECRET_KEY, _minio_binary

pytestmark = pytest.mark.integration


def _openssl(*args: str | Path) -> None:
    if shutil.which("openssl") is None:
        availability.unavailable("openssl not installed (make host)")
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


def _ca(d: Path, name: str) -> tuple[Path, Path]:
    key, crt = d / f"{name}.key", d / f"{name}.crt"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", key, "-out", crt)  # fmt: skip
    return key, crt


@pytest.fixture(scope="module")
def tls_store() -> Iterator[tuple[str, Path, Path]]:
    """(https endpoint, the CA that signed its certificate, another CA)."""
    binary = _minio_binary()
    if binary is None:
        availability.unavailable("no MinIO binary (make bins)")
    work = Path(tempfile.mkdtemp(prefix="quorumdb-s3-tls-"))
    certs = work / "certs"
    certs.mkdir()
    ca_key, ca_crt = _ca(work, "test-private-ca")
    _, other_crt = _ca(work, "another-ca")
    csr = work / "leaf.csr"
    ext = work / "leaf.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", certs / "private.key", "-out", csr)  # fmt: skip
    _openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
             "-extfile", ext, "-out", certs / "public.crt")  # fmt: skip
    port, console = availability.free_ports(2)
    env = {**os.environ, "MINIO_ROOT_USER": ACCESS_KEY, "MINIO_ROOT_PASSWORD": SECRET_KEY}
    proc = subprocess.Popen(
        [binary, "server", str(work / "data"), "--address", f"127.0.0.1:{port}",
         "--console-address", f"127.0.0.1:{console}", "--certs-dir", str(certs), "--quiet"],
        env=env, stdout=(work / "minio.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    endpoint = f"https://127.0.0.1:{port}"
    try:
        probe = s3.Archive(endpoint, "probe", ACCESS_KEY, SECRET_KEY, ca_file=str(ca_crt))
        deadline = time.monotonic() + 60
        while True:
            try:
                probe.ensure_bucket()
                break
            except Exception as err:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (work / "minio.log").read_text()[-1500:]
                    availability.unavailable(f"TLS MinIO not ready: {err}\n{log}")
                time.sleep(0.3)
        yield endpoint, ca_crt, other_crt
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def test_archive_trusts_the_private_ca_from_the_environment_and_nothing_else(
    tls_store: tuple[str, Path, Path],
) -> None:
    endpoint, ca, other = tls_store
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    env = {
        contract.Env.S3_ENDPOINT: endpoint,
        contract.Env.S3_BUCKET: bucket,
        contract.Env.S3_PREFIX: "ns/c",
        contract.Env.S3_ACCESS_KEY_ID: ACCESS_KEY,
        contract.Env.S3_SECRET_ACCESS_KEY: SECRET_KEY,
        contract.Env.S3_CA_FILE: str(ca),
    }
    found = s3.from_env(env)
    assert found is not None
    archive, prefix = found
    archive.ensure_bucket()
    archive.put_json(f"{prefix}/probe.json", {"ok": 1})
    assert archive.get_json(f"{prefix}/probe.json") == {"ok": 1}

    without = {k: v for k, v in env.items() if k != contract.Env.S3_CA_FILE}
    for untrusted in (without, {**env, contract.Env.S3_CA_FILE: str(other)}):
        found = s3.from_env(untrusted)
        assert found is not None
        with pytest.raises(botocore.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            found[0].put_json(f"{prefix}/refused.json", {"ok": 0})
    assert archive.head(f"{prefix}/refused.json") is None


def test_operator_store_uses_the_bundle_from_the_secret(tls_store: tuple[str, Path, Path]) -> None:
    endpoint, ca, other = tls_store
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    s3.Archive(endpoint, bucket, ACCESS_KEY, SECRET_KEY, ca_file=str(ca)).ensure_bucket()
    spec = ObjectStoreSpec.model_validate(
        {"endpoint": endpoint, "bucket": bucket, "credentialsSecret": {"name": "s3"},
         "caSecret": {"name": "store-ca"}}
    )  # fmt: skip
    store = objectstore.ObjectStore(spec, ACCESS_KEY, SECRET_KEY, "ns/c", ca.read_bytes())
    assert not store.catalog().backups
    wrong = objectstore.ObjectStore(spec, ACCESS_KEY, SECRET_KEY, "ns/c", other.read_bytes())
    with pytest.raises(objectstore.StoreError):
        wrong.catalog()
