"""Thin blocking S3 driver for the archive (boto3): put with an MD5 the server verifies, head, get, list.

Why it exists: the archiver, repair and the client need a few S3 calls with integrity checks and nothing
else; keeping boto3 behind this class keeps the rest typed and testable against a real S3 server. With a
key, archive objects (WAL, base backups) are encrypted client-side (``envelope``) on the way up and
decrypted on the way down; their ``sha256`` metadata is always the plaintext's, so every caller verifies
the same digest either way, and an encrypted object read without the right key fails with the key ids.
JSON records stay plaintext (the operator reads them without the key; they hold LSNs and sizes). WAL is
compressed (zstd, level 1) before it is sealed when that saves at least a tenth (a segment is mostly
zero-padded or repetitive records; one of random bytes is stored as it is), marked ``compression: zstd``
with its ``plain-size``; every reader decompresses by the mark, so older uncompressed objects stay
readable. It must not decide what to upload or when (``node.archiver`` does); callers run it in threads.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import boto3  # type: ignore[import-untyped]
import boto3.s3.transfer  # type: ignore[import-untyped]
import botocore.config  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]
import zstandard
from aurora_api import contract, secretfiles

from aurora_storage import checksum, envelope

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None


COMPRESSION = "zstd"
WORTH_COMPRESSING = 0.9
"""Stored compressed only when that is at most this fraction of the plain size."""
MAX_PLAIN_BYTES = 64 * 1024 * 1024
"""Decompression never produces more than this (a WAL segment is 16 MiB): a bomb is refused."""


def zstd_pack(data: bytes) -> bytes | None:
    """zstd level 1 of ``data``, or None when that does not save a tenth."""
    packed = zstandard.ZstdCompressor(level=1).compress(data)
    return packed if len(packed) <= len(data) * WORTH_COMPRESSING else None


def _decompress(where: str, data: bytes, size: int) -> bytes:
    try:
        out = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_PLAIN_BYTES)
    except zstandard.ZstdError as err:
        raise checksum.ChecksumError(f"{where}: cannot decompress ({err})") from err
    if len(out) != size:
        raise checksum.ChecksumError(f"{where}: decompressed {len(out)} bytes, metadata says {size}")
    return out


def _decompress_chunks(where: str, chunks: Iterator[bytes]) -> Generator[bytes, None, None]:
    d = zstandard.ZstdDecompressor().decompressobj()
    total = 0
    try:
        for chunk in chunks:
            try:
                out = d.decompress(chunk)
            except zstandard.ZstdError as err:
                raise checksum.ChecksumError(f"{where}: cannot decompress ({err})") from err
            total += len(out)
            if total > MAX_PLAIN_BYTES:
                raise checksum.ChecksumError(f"{where}: decompresses past {MAX_PLAIN_BYTES} bytes")
            if out:
                yield out
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class KeyMissing(RuntimeError):
    """Encryption is configured but the key is not available: nothing is uploaded in the clear."""


class Archive:
    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        key: bytes | None = None,
        encrypted: bool = False,
        ca_file: str | None = None,
        sse: str | None = None,
    ) -> None:
        """``key`` encrypts uploads and decrypts encrypted objects; ``encrypted`` without a key refuses
        every upload (the Secret is missing) rather than writing plaintext. ``ca_file``: a PEM bundle of
        the CAs to trust for an https endpoint instead of the system's (a private CA). ``sse``: the
        server-side encryption every upload asks for ("AES256"), or None."""
        self.bucket = bucket
        self._sse: dict[str, Any] = {"ServerSideEncryption": sse} if sse else {}
        self.key = envelope.check_key(key) if key is not None else None
        self.encrypted = encrypted or key is not None
        self._s3: S3Client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            verify=ca_file or None,
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

    def _sealing(self) -> bytes | None:
        if self.encrypted and self.key is None:
            raise KeyMissing("backup encryption is configured but its key is missing (Secret not mounted?)")
        return self.key

    def _marked(self, meta: dict[str, str]) -> dict[str, str]:
        assert self.key is not None
        return {**meta, "encryption": f"{envelope.SCHEME}:{envelope.key_id(self.key)}"}

    def _opener_key(self, key: str, meta: dict[str, str]) -> bytes | None:
        scheme = meta.get("encryption")
        if not scheme:
            return None
        if self.key is None:
            where = f"s3://{self.bucket}/{key}"
            raise envelope.EnvelopeError(f"{where} is encrypted ({scheme}) and no key is given")
        return self.key

    def put(self, key: str, data: bytes, meta: dict[str, str], *, compress: bool = False) -> int:
        """Upload (compressed when asked and worth it, then encrypted with the archive's key); the server
        rejects the body unless it matches the MD5 computed here. Returns the bytes stored."""
        sealing = self._sealing()
        plain_size = len(data)
        packed = zstd_pack(data) if compress else None
        if packed is not None:
            meta = {**meta, "compression": COMPRESSION, "plain-size": str(plain_size)}
            data = packed
        if sealing is not None:
            meta = {**self._marked(meta), "plain-size": str(plain_size)}
            data = envelope.seal(sealing, data)
        self._put(key, data, meta)
        return len(data)

    def _put(self, key: str, data: bytes, meta: dict[str, str]) -> None:
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        self._s3.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentMD5=md5, Metadata=meta, **self._sse
        )

    def get_verified(self, key: str) -> bytes:
        r = self._s3.get_object(Bucket=self.bucket, Key=key)
        data: bytes = r["Body"].read()
        meta = r.get("Metadata", {})
        opener = self._opener_key(key, meta)
        if opener is not None:
            data = envelope.open_bytes(opener, data)
        if self._compressed(key, meta):
            data = _decompress(f"s3://{self.bucket}/{key}", data, int(meta.get("plain-size", "-1")))
        want = meta.get("sha256")
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
        meta = r.get("Metadata", {})
        want = meta.get("sha256")
        if not want:
            body.close()
            raise checksum.ChecksumError(f"s3://{self.bucket}/{key}: no sha256 in the object's metadata")
        opener = self._opener_key(key, meta)

        def chunks() -> Generator[bytes, None, None]:
            try:
                while block := body.read(chunk):
                    yield block
            finally:
                body.close()

        plain: Generator[bytes, None, None] = chunks()
        if opener is not None:
            plain = _closing(envelope.open_chunks(opener, plain))
        if self._compressed(key, meta):
            plain = _decompress_chunks(f"s3://{self.bucket}/{key}", plain)
        if opener is None and "compression" not in meta:
            return want, int(r["ContentLength"]), plain
        return want, int(meta.get("plain-size", "-1")), plain

    def _compressed(self, key: str, meta: Mapping[str, str]) -> bool:
        scheme = meta.get("compression")
        if scheme not in (None, COMPRESSION):
            raise checksum.ChecksumError(f"s3://{self.bucket}/{key}: unknown compression {scheme!r}")
        return scheme == COMPRESSION

    def list(self, prefix: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            r = self._s3.list_objects_v2(**kwargs)
            out.extend(ObjectInfo(o["Key"], o["Size"], None) for o in r.get("Contents", []))
            if not r.get("IsTruncated"):
                return out
            kwargs["ContinuationToken"] = r["NextContinuationToken"]

    def upload_stream(self, key: str, source: IO[bytes], meta: Mapping[str, str]) -> int | None:
        """Upload a stream of unknown length (multipart, 16 MiB parts, each part's MD5 checked by the
        server). The caller hashes what it streams and records the digest elsewhere: a multipart object's
        metadata is fixed before its last byte is read. Returns the bytes stored when they were sealed
        (encrypted), else None: the caller counted them."""
        config = boto3.s3.transfer.TransferConfig(
            multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024, max_concurrency=2
        )
        sealing = self._sealing()
        body: Any = source
        if sealing is not None:
            body, meta = envelope.SealingReader(source, sealing), self._marked(dict(meta))
        extra = {"Metadata": dict(meta), **self._sse}
        self._s3.upload_fileobj(body, self.bucket, key, ExtraArgs=extra, Config=config)
        return body.sealed_bytes if sealing is not None else None

    def read_chunks(self, key: str, chunk: int = checksum.CHUNK) -> tuple[int, Generator[bytes, None, None]]:
        """``(size, body chunks)`` of an object; the caller verifies the bytes against a digest it knows."""
        r = self._s3.get_object(Bucket=self.bucket, Key=key)
        body = r["Body"]
        opener = self._opener_key(key, r.get("Metadata", {}))

        def chunks() -> Generator[bytes, None, None]:
            try:
                while block := body.read(chunk):
                    yield block
            finally:
                body.close()

        if opener is None:
            return int(r["ContentLength"]), chunks()
        return int(r["ContentLength"]), _closing(envelope.open_chunks(opener, chunks()))

    def put_json(self, key: str, doc: Mapping[str, Any]) -> None:
        """A plaintext JSON record (see the module docstring)."""
        data = json.dumps(doc, sort_keys=True).encode()
        self._put(key, data, {"sha256": checksum.sha256_bytes(data)})

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


def _closing(it: Iterator[bytes]) -> Generator[bytes, None, None]:
    """A generator over ``it`` whose ``close()`` reaches the connection-owning generator inside."""
    try:
        yield from it
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def key_from_env(env: Mapping[str, str], name: str = contract.Env.BACKUP_KEY) -> bytes | None:
    """The 32-byte key from a base64 variable (or its ``_FILE``); None when unset or empty. EnvelopeError
    when malformed."""
    raw = secretfiles.read(env, name).strip()
    if not raw:
        return None
    try:
        return envelope.check_key(base64.b64decode(raw, validate=True))
    except ValueError as err:
        raise envelope.EnvelopeError(f"{name}: not the base64 of a 32-byte key ({err})") from err


@dataclass(frozen=True)
class StoreConfig:
    """A pod's object-store settings, read from its environment in one place (``config_from_env``) for
    every process that uploads: a setting added here reaches the storage nodes and the instance managers
    alike (the storage node's own copy of this reading once dropped ``serverSideEncryption``). The client
    is built later (``archive``): building one takes a few hundred milliseconds (botocore's service
    models), which a storage node spends only once its API answers."""

    endpoint: str
    bucket: str
    prefix: str
    """Key prefix of this cluster's archive (no leading or trailing slash), e.g. ``ns/cluster``."""
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    key: bytes | None = field(default=None, repr=False)
    """Client-side encryption key of archive objects (``envelope``)."""
    encrypted: bool = False
    """Encryption is configured: without ``key`` nothing is uploaded."""
    ca_file: str | None = None
    """PEM bundle of the CAs to trust for an https endpoint (objectStore.caSecret); None: the system's."""
    sse: str | None = None
    """Server-side encryption every upload asks for (objectStore.serverSideEncryption); None: not asked."""

    def archive(self) -> Archive:
        return Archive(
            self.endpoint, self.bucket, self.access_key, self.secret_key, self.region, self.key,
            self.encrypted, self.ca_file, self.sse,
        )  # fmt: skip


def config_from_env(
    env: Mapping[str, str], key_of: Callable[[Mapping[str, str]], bytes | None] = key_from_env
) -> StoreConfig | None:
    """The settings from ``contract.Env`` names, or None when the cluster has no object store. ``key_of``
    reads the encryption key (default: ``key_from_env``, raising on a malformed one)."""
    endpoint, bucket = env.get(contract.Env.S3_ENDPOINT), env.get(contract.Env.S3_BUCKET)
    if not endpoint or not bucket:
        return None
    return StoreConfig(
        endpoint=endpoint,
        bucket=bucket,
        prefix=env.get(contract.Env.S3_PREFIX, "").strip("/"),
        access_key=secretfiles.read(env, contract.Env.S3_ACCESS_KEY_ID),
        secret_key=secretfiles.read(env, contract.Env.S3_SECRET_ACCESS_KEY),
        region=env.get(contract.Env.S3_REGION, "us-east-1"),
        key=key_of(env),
        encrypted=bool(env.get(contract.Env.BACKUP_ENCRYPTED)),
        ca_file=env.get(contract.Env.S3_CA_FILE) or None,
        sse=env.get(contract.Env.S3_SSE) or None,
    )


def from_env(env: Mapping[str, str]) -> tuple[Archive, str] | None:
    """The cluster's archive and key prefix from the pod's environment (``contract.Env``), or None when
    the cluster has no object store."""
    cfg = config_from_env(env)
    return None if cfg is None else (cfg.archive(), cfg.prefix)
