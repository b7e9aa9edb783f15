"""Thin blocking S3 driver for the archive (boto3): put with an MD5 the server verifies, head, get, list.

Why it exists: the archiver, repair and the client need a few S3 calls with integrity checks and nothing
else; keeping boto3 behind this class keeps the rest typed and testable against a real S3 server. It must
not decide what to upload or when (``node.archiver`` does); callers run it in threads.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import boto3  # type: ignore[import-untyped]
import boto3.s3.transfer  # type: ignore[import-untyped]
import botocore.config  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]
from aurora_api import contract

from aurora_storage import checksum

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None


class Archive:
    def __init__(
        self, endpoint: str, bucket: str, access_key: str, secret_key: str, region: str = "us-east-1"
    ) -> None:
        self.bucket = bucket
        self._s3: S3Client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=botocore.config.Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 2},
                connect_timeout=3,
                read_timeout=30,
            ),
        )

    def head(self, key: str) -> ObjectInfo | None:
        try:
            r = self._s3.head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(key, r["ContentLength"], r.get("Metadata", {}).get("sha256"))

    def put(self, key: str, data: bytes, meta: dict[str, str]) -> None:
        """Upload; the server rejects the body unless it matches the MD5 we computed here."""
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentMD5=md5, Metadata=meta)

    def get_verified(self, key: str) -> bytes:
        r = self._s3.get_object(Bucket=self.bucket, Key=key)
        data: bytes = r["Body"].read()
        want = r.get("Metadata", {}).get("sha256")
        got = checksum.sha256_bytes(data)
        if want is None or want != got:
            raise checksum.ChecksumError(f"s3://{self.bucket}/{key}: sha256 {got} != metadata {want}")
        return data

    def stream(self, key: str, chunk: int = checksum.CHUNK) -> tuple[str, int, Generator[bytes, None, None]]:
        """``(sha256 from the object's metadata, size, body chunks)`` for a caller that hashes as it reads.

        The caller must verify the bytes against the returned digest (``store.Incoming`` does); a missing
        digest raises :class:`checksum.ChecksumError` before any byte is read. Closing the iterator (or
        dropping it) closes the connection.
        """
        r = self._s3.get_object(Bucket=self.bucket, Key=key)
        body = r["Body"]
        want = r.get("Metadata", {}).get("sha256")
        if not want:
            body.close()
            raise checksum.ChecksumError(f"s3://{self.bucket}/{key}: no sha256 in the object's metadata")

        def chunks() -> Generator[bytes, None, None]:
            try:
                while block := body.read(chunk):
                    yield block
            finally:
                body.close()

        return want, int(r["ContentLength"]), chunks()

    def list(self, prefix: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            r = self._s3.list_objects_v2(**kwargs)
            out.extend(ObjectInfo(o["Key"], o["Size"], None) for o in r.get("Contents", []))
            if not r.get("IsTruncated"):
                return out
            kwargs["ContinuationToken"] = r["NextContinuationToken"]

    def upload_stream(self, key: str, source: IO[bytes], meta: Mapping[str, str]) -> None:
        """Upload a stream of unknown length (multipart, 16 MiB parts, each part's MD5 checked by the
        server). The caller hashes what it streams and records the digest elsewhere: a multipart object's
        metadata is fixed before its last byte is read."""
        config = boto3.s3.transfer.TransferConfig(
            multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024, max_concurrency=2
        )
        self._s3.upload_fileobj(source, self.bucket, key, ExtraArgs={"Metadata": dict(meta)}, Config=config)

    def read_chunks(self, key: str, chunk: int = checksum.CHUNK) -> tuple[int, Generator[bytes, None, None]]:
        """``(size, body chunks)`` of an object; the caller verifies the bytes against a digest it knows."""
        r = self._s3.get_object(Bucket=self.bucket, Key=key)
        body = r["Body"]

        def chunks() -> Generator[bytes, None, None]:
            try:
                while block := body.read(chunk):
                    yield block
            finally:
                body.close()

        return int(r["ContentLength"]), chunks()

    def put_json(self, key: str, doc: Mapping[str, Any]) -> None:
        data = json.dumps(doc, sort_keys=True).encode()
        self.put(key, data, {"sha256": checksum.sha256_bytes(data)})

    def get_json(self, key: str) -> Any:
        """The verified JSON document at ``key``, or None when there is none."""
        try:
            return json.loads(self.get_verified(key))
        except botocore.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def ensure_bucket(self) -> None:
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError:
            self._s3.create_bucket(Bucket=self.bucket)


def from_env(env: Mapping[str, str]) -> tuple[Archive, str] | None:
    """The cluster's archive and key prefix from the pod's environment (``contract.Env``), or None when
    the cluster has no object store."""
    endpoint, bucket = env.get(contract.Env.S3_ENDPOINT), env.get(contract.Env.S3_BUCKET)
    if not endpoint or not bucket:
        return None
    archive = Archive(
        endpoint,
        bucket,
        env.get(contract.Env.S3_ACCESS_KEY_ID, ""),
        env.get(contract.Env.S3_SECRET_ACCESS_KEY, ""),
        env.get(contract.Env.S3_REGION, "us-east-1"),
    )
    return archive, env.get(contract.Env.S3_PREFIX, "").strip("/")
