"""Thin blocking S3 driver for the archive (boto3): put with an MD5 the server verifies, head, get, list.

Why it exists: the archiver, repair and the client need a few S3 calls with integrity checks and nothing
else; keeping boto3 behind this class keeps the rest typed and testable against a real S3 server. It must
not decide what to upload or when (``node.archiver`` does); callers run it in threads.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3  # type: ignore[import-untyped]
import botocore.config  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]

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

    def ensure_bucket(self) -> None:
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError:
            self._s3.create_bucket(Bucket=self.bucket)
