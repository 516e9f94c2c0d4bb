"""The one object-store wrapper: S3 (boto3) or a local directory.

It stores the public files (``ASSET_BUCKET``: the cell exports and the map
tiles) and the raw report archives (the ``s3`` and ``file`` export
targets, :mod:`ichnaea.pipeline.export.exporters`).

``ASSET_BUCKET`` is a bucket name or ``s3://bucket[/prefix]`` (boto3, with
``S3_ENDPOINT_URL`` for S3-compatible stores), or ``file:///abs/dir`` for a
single host, where files appear atomically (written under a hidden name,
then renamed). Empty means no store: the scheduled exports are off.

A store can ``put`` one file, ``put_bytes``, ``read`` one back (the
website reads ``tiles/data.json``), list what it holds under a prefix
(key → size), give the MD5 of a stored object and delete keys.
:func:`sync_directory` mirrors a local directory to a prefix with those:
new and changed files (size first, then MD5) are uploaded, unchanged ones
left alone, and keys no longer present locally deleted.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from ichnaea.atomicfile import write_atomically

DELETE_BATCH = 1000


class ObjectStore(Protocol):
    def put(
        self, key: str, path: Path, *, content_type: str = ..., cache_control: str = ...
    ) -> str:
        """Store the file ``path`` as ``key``; return where it went, for the log."""
        ...

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str = ...,
        content_encoding: str = ...,
    ) -> str:
        """Store ``data`` as ``key`` in one request; return where it went."""
        ...

    def read(self, key: str) -> bytes | None:
        """The content of ``key``, or None when nothing is stored there."""
        ...

    def sizes(self, prefix: str) -> dict[str, int]:
        """Key → size in bytes of everything stored under ``prefix``."""
        ...

    def md5(self, key: str) -> str:
        """The hex MD5 of a stored object."""
        ...

    def delete(self, keys: Iterable[str]) -> None: ...

    def close(self) -> None:
        """Release the client held between calls."""
        ...


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class S3Store:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str = "") -> None:
        self.bucket = bucket
        self.prefix = prefix
        # Imported here: only S3 exports and backups need it, and it is a tenth
        # of a worker's start-up.
        import boto3

        self._client: Any = boto3.client("s3", endpoint_url=endpoint_url or None)
        self._etags: dict[str, str] = {}

    def put(
        self,
        key: str,
        path: Path,
        *,
        content_type: str = "application/gzip",
        cache_control: str = "",
    ) -> str:
        extra = {"ContentType": content_type}
        if cache_control:
            extra["CacheControl"] = cache_control
        self._client.upload_file(str(path), self.bucket, self.prefix + key, ExtraArgs=extra)
        return f"s3://{self.bucket}/{self.prefix + key}"

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str = "",
        content_encoding: str = "",
    ) -> str:
        extra = {"CacheControl": cache_control} if cache_control else {}
        if content_encoding:
            extra["ContentEncoding"] = content_encoding
        self._client.put_object(
            Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType=content_type, **extra
        )
        return f"s3://{self.bucket}/{self.prefix + key}"

    def read(self, key: str) -> bytes | None:
        try:
            reply = self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except self._client.exceptions.NoSuchKey:
            return None
        body: bytes = reply["Body"].read()
        return body

    def sizes(self, prefix: str) -> dict[str, int]:
        found: dict[str, int] = {}
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        for page in pages:
            for entry in page.get("Contents", []):
                key = entry["Key"][len(self.prefix) :]
                found[key] = int(entry["Size"])
                self._etags[key] = entry["ETag"].strip('"')
        return found

    def md5(self, key: str) -> str:
        # A single-part upload's ETag is the MD5 of its body; put_bytes is
        # single-part, so tiles compare correctly.
        if key not in self._etags:
            reply = self._client.head_object(Bucket=self.bucket, Key=self.prefix + key)
            self._etags[key] = reply["ETag"].strip('"')
        return self._etags[key]

    def delete(self, keys: Iterable[str]) -> None:
        batch = [self.prefix + key for key in keys]
        for start in range(0, len(batch), DELETE_BATCH):
            objects = [{"Key": key} for key in batch[start : start + DELETE_BATCH]]
            self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})

    def close(self) -> None:
        self._client.close()


class DirectoryStore:
    """Files under ``directory``; each appears atomically (hidden name, fsync, rename).

    ``mode`` 0644 for public files, 0600 for raw report archives (they
    locate people).
    """

    def __init__(self, directory: Path, *, mode: int = 0o644) -> None:
        self.directory = directory
        self.mode = mode

    def _write(self, key: str, fill: Callable[[BinaryIO], object]) -> str:
        target = self.directory / key
        write_atomically(target, fill, mode=self.mode)
        return str(target)

    def put(self, key: str, path: Path, *, content_type: str = "", cache_control: str = "") -> str:
        def copy(out: BinaryIO) -> None:
            with path.open("rb") as source:
                shutil.copyfileobj(source, out)

        return self._write(key, copy)

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "",
        cache_control: str = "",
        content_encoding: str = "",
    ) -> str:
        return self._write(key, lambda out: out.write(data))

    def read(self, key: str) -> bytes | None:
        try:
            return (self.directory / key).read_bytes()
        except FileNotFoundError:
            return None

    def sizes(self, prefix: str) -> dict[str, int]:
        base = self.directory / prefix
        if not base.is_dir():
            return {}
        return {
            path.relative_to(self.directory).as_posix(): path.stat().st_size
            for path in base.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        }

    def md5(self, key: str) -> str:
        return _md5_file(self.directory / key)

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            (self.directory / key).unlink(missing_ok=True)

    def close(self) -> None:
        pass


def asset_store(asset_bucket: str, *, endpoint_url: str = "") -> ObjectStore | None:
    """The store ``ASSET_BUCKET`` names, or None when it is empty.

    Raises ``ValueError`` for a value that is neither a bucket name, an
    ``s3://bucket[/prefix]`` URL nor a ``file:///absolute/dir`` URL.
    """
    value = asset_bucket.strip()
    if not value:
        return None
    if "://" not in value:
        if "/" in value:
            raise ValueError(f"ASSET_BUCKET {value!r}: a bucket name has no '/'")
        return S3Store(value, endpoint_url=endpoint_url)
    parts = urlsplit(value)
    if parts.scheme == "s3" and parts.netloc:
        prefix = parts.path.strip("/")
        return S3Store(parts.netloc, prefix + "/" if prefix else "", endpoint_url=endpoint_url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path.startswith("/"):
        return DirectoryStore(Path(parts.path))
    raise ValueError(
        f"ASSET_BUCKET {value!r} is not a bucket name, s3://bucket[/prefix] or file:///abs/dir"
    )


@dataclass
class SyncSummary:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0


def sync_directory(
    store: ObjectStore,
    local: Path,
    prefix: str,
    *,
    content_type: str,
    cache_control: str = "",
    keep: Iterable[str] = (),
    progress: Callable[[int], object] | None = None,
) -> SyncSummary:
    """Make ``prefix`` in ``store`` hold exactly the files under ``local`` (module docstring).

    Keys in ``keep`` (relative to ``prefix``) are never deleted.
    """
    summary = SyncSummary()
    remote = store.sizes(prefix)
    seen: set[str] = set()
    for path in sorted(local.rglob("*")):
        if not path.is_file():
            continue
        key = prefix + path.relative_to(local).as_posix()
        seen.add(key)
        size = path.stat().st_size
        if key in remote and remote[key] == size and store.md5(key) == _md5_file(path):
            summary.unchanged += 1
        else:
            if key in remote:
                summary.changed += 1
            else:
                summary.new += 1
            store.put_bytes(
                key, path.read_bytes(), content_type=content_type, cache_control=cache_control
            )
        if progress is not None:
            progress(1)
    kept = {prefix + name for name in keep}
    orphans = sorted(set(remote) - seen - kept)
    store.delete(orphans)
    summary.deleted = len(orphans)
    return summary
