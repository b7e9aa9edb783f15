"""The operator's view of a cluster's object store: the backup catalog, the restorable mark, deletions.

Why the operator reads the bucket itself: the restorable window must be proven from what the store holds
(not from what pods say they uploaded), must be checked before a restore creates anything, and must be
readable after the source cluster and its pods are gone. Blocking boto3 calls behind a small class the
backup pass runs in a thread; the layout and the meaning of the objects are ``aurora_api.backups``. It must
not decide anything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3  # type: ignore[import-untyped]
import botocore.config  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]
import pydantic
from aurora_api import backups
from aurora_api.v1alpha1.cluster import ObjectStoreSpec

from .reconcile.backups import Catalog

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger(__name__)

StoreError = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
"""What a call raises when the store is unreachable, refuses the credentials, or lacks the bucket."""


def ca_file(bundle: bytes) -> str:
    """A file holding ``bundle`` (botocore verifies against a path), named by its digest in the temporary
    directory (the operator's only writable one): written once, shared by every store with that CA."""
    path = Path(tempfile.gettempdir()) / "quorumdb-s3-ca" / f"{hashlib.sha256(bundle).hexdigest()}.pem"
    if not path.exists():
        path.parent.mkdir(mode=0o700, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(bundle)
        partial.replace(path)
    return str(path)


class ObjectStore:
    def __init__(
        self,
        spec: ObjectStoreSpec,
        access_key: str,
        secret_key: str,
        prefix: str,
        ca_bundle: bytes | None = None,
    ) -> None:
        self.bucket = spec.bucket
        self.prefix = prefix.strip("/")
        sse = spec.server_side_encryption
        self._sse: dict[str, Any] = {"ServerSideEncryption": sse} if sse else {}
        self._s3: S3Client = boto3.client(
            "s3", endpoint_url=spec.endpoint, region_name=spec.region,
            aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            verify=ca_file(ca_bundle) if ca_bundle is not None else None,
            config=botocore.config.Config(
                s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                connect_timeout=3, read_timeout=20,
            ),
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _keys(self, prefix: str) -> list[str]:
        out: list[str] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            r = self._s3.list_objects_v2(**kwargs)
            out.extend(o["Key"] for o in r.get("Contents", []))
            if not r.get("IsTruncated"):
                return out
            kwargs["ContinuationToken"] = r["NextContinuationToken"]

    def _json(self, key: str) -> Any:
        r = self._s3.get_object(Bucket=self.bucket, Key=key)
        data: bytes = r["Body"].read()
        want = r.get("Metadata", {}).get("sha256")
        if want != hashlib.sha256(data).hexdigest():
            raise ValueError(f"s3://{self.bucket}/{key}: content does not match its sha256 metadata")
        return json.loads(data)

    def catalog(self) -> Catalog:
        base = backups.backups_prefix(self.prefix)
        keys = self._keys(base)
        records: set[str] = set()
        tars: set[str] = set()
        for key in keys:
            backup_id, _, leaf = key[len(base) :].partition("/")
            (records if leaf == backups.RECORD_FILE else tars if leaf == backups.BACKUP_FILE else set()).add(
                backup_id
            )
        found = []
        for backup_id in sorted(records):
            try:
                found.append(
                    backups.BaseBackup.model_validate(self._json(backups.record_key(self.prefix, backup_id)))
                )
            except (ValueError, pydantic.ValidationError) as err:
                log.error("backup record %s is unreadable, ignored: %s", backup_id, err)
        wal = self._keys(f"{self.prefix}/wal/" if self.prefix else "wal/")
        restorable = None
        try:
            restorable = backups.Restorable.model_validate(self._json(backups.restorable_key(self.prefix)))
        except botocore.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
        return Catalog(
            backups=tuple(found), incomplete=tuple(sorted(tars - records)),
            segments=frozenset(backups.archived_segments(wal)), wal_keys=tuple(wal), restorable=restorable,
        )  # fmt: skip

    def record(self, backup_id: str) -> backups.BaseBackup | None:
        """A base backup's record, or None while it has none."""
        try:
            return backups.BaseBackup.model_validate(self._json(backups.record_key(self.prefix, backup_id)))
        except botocore.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def copy_into(self, keys: list[str], dest_prefix: str) -> int:
        """Server-side copies (CopyObject: metadata such as the sha256 kept; objects up to 5 GiB, which WAL
        segments are) of ``keys`` under this prefix to the same relative keys under ``dest_prefix``; the
        bytes copied."""
        total = 0
        for key in keys:
            relative = key[len(self.prefix) :].lstrip("/")
            target = f"{dest_prefix.strip('/')}/{relative}"
            source: Any = {"Bucket": self.bucket, "Key": key}
            self._s3.copy_object(Bucket=self.bucket, Key=target, CopySource=source, **self._sse)
            total += int(self._s3.head_object(Bucket=self.bucket, Key=target)["ContentLength"])
        return total

    def delete_prefix(self) -> int:
        """Delete every object under this prefix (``prefix/``); how many."""
        keys = self._keys(f"{self.prefix}/")
        self.delete(keys)
        return len(keys)

    def write_restorable(self, mark: backups.Restorable) -> None:
        data = json.dumps(mark.model_dump(mode="json"), sort_keys=True).encode()
        self._s3.put_object(
            Bucket=self.bucket, Key=backups.restorable_key(self.prefix), Body=data,
            Metadata={"sha256": hashlib.sha256(data).hexdigest()}, **self._sse,
        )  # fmt: skip

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch: list[Any] = [{"Key": k} for k in keys[start : start + 1000]]
            self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
