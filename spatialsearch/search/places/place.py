"""Places in a search's storage (storage.py): a file or folder in a local filesystem or an
S3 bucket, through pyarrow's filesystems (what Ray Tune writes through), and the preflight
probe of a storage."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from spatialsearch.errors import ConfigError
from spatialsearch.redact import masked
from spatialsearch.search.space.storage import S3, StorageConfig

_logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=16)
def s3_filesystem(storage: StorageConfig, *, quick: bool = False) -> pafs.S3FileSystem:
    """The bucket's filesystem, made once per storage (every checkpoint located in it shares
    it); credentials from the environment or ~/.aws. quick: one try with short timeouts (the
    preflight probe); else pyarrow's retries (the trials)."""
    options: dict[str, Any] = {"region": os.environ.get("AWS_REGION")
                               or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"}
    if storage.endpoint:
        parts = urlsplit(storage.endpoint)
        options |= {"endpoint_override": parts.netloc, "scheme": parts.scheme}
    if quick:
        options |= {"connect_timeout": 3, "request_timeout": 10,
                    "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=1)}
    return pafs.S3FileSystem(**options)


@dataclass(frozen=True)
class Place:
    """A file or folder in one filesystem: local or S3."""

    filesystem: pafs.FileSystem
    path: str

    @property
    def local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    @property
    def uri(self) -> str:
        """For people and for locate(): a local path, or s3://bucket/key."""
        return self.path if self.local else S3 + self.path

    def child(self, *parts: str) -> Place:
        return Place(self.filesystem, "/".join([self.path.rstrip("/"), *parts]))

    @property
    def parent(self) -> Place:
        return Place(self.filesystem, self.path.rstrip("/").rsplit("/", 1)[0] or "/")

    def kind(self) -> pafs.FileType:
        return self.filesystem.get_file_info(self.path).type

    def is_file(self) -> bool:
        return self.kind() == pafs.FileType.File

    def is_dir(self) -> bool:
        return self.kind() == pafs.FileType.Directory

    def exists(self) -> bool:
        return self.kind() != pafs.FileType.NotFound

    def read_text(self) -> str:
        with self.filesystem.open_input_stream(self.path) as stream:
            return stream.read().decode()

    def write_bytes(self, data: bytes) -> None:
        """Whole or not at all: a local file is written beside and renamed into place (an
        S3 PUT is atomic)."""
        if not self.local:
            with self.filesystem.open_output_stream(self.path) as stream:
                stream.write(data)
            return
        target = Path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        partial.write_bytes(data)
        partial.replace(target)

    def entries(self) -> list[Place]:
        """The folder's direct entries, sorted by path; none when it does not exist."""
        found = self.filesystem.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        return [Place(self.filesystem, info.path) for info in sorted(found, key=lambda i: i.path)]

    def delete(self) -> None:
        kind = self.kind()
        if kind == pafs.FileType.Directory:
            self.filesystem.delete_dir(self.path)
        elif kind == pafs.FileType.File:
            self.filesystem.delete_file(self.path)

    def fetch(self, target: Path) -> Path:
        """Copy this file down to target (written whole, then renamed into place)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        pafs.copy_files(self.path, str(partial.resolve()), source_filesystem=self.filesystem,
                        destination_filesystem=pafs.LocalFileSystem())
        partial.replace(target)
        return target

    def upload(self, source: Path) -> None:
        """Copy a local file or folder (recursively) to this place."""
        if self.local:
            target = Path(self.path)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
            return
        pafs.copy_files(str(source.resolve()), self.path,
                        source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self.filesystem)


@contextlib.contextmanager
def local_copy(place: Place) -> Iterator[str | None]:
    """The file as a local path for the duration: itself when local, else fetched into a
    temporary folder; None when it is not there (or cannot be fetched: logged)."""
    if place.local:
        yield place.path if Path(place.path).is_file() else None
        return
    with tempfile.TemporaryDirectory(prefix="fetched-") as folder:
        try:
            path = str(place.fetch(Path(folder) / place.path.rsplit("/", 1)[-1]))
        except (OSError, FileNotFoundError) as error:
            _logger.warning("cannot fetch %s: %s", masked(place.uri), _reason(error))
            path = None
        yield path


def tune_storage(place: Place) -> dict[str, Any]:
    """RunConfig's storage_path / storage_filesystem for a Tune experiment under place (Ray's
    own local filesystem handling when it is local)."""
    return {"storage_path": place.path,
            "storage_filesystem": None if place.local else place.filesystem}


def locate(location: str, storage: StorageConfig) -> Place:
    """A place from its uri (Place.uri): s3://... through the storage's endpoint."""
    if location.startswith(S3):
        return Place(s3_filesystem(storage), location[len(S3):])
    return Place(pafs.LocalFileSystem(), location)


def search_place(storage: StorageConfig, local_folder: Path, name: str) -> Place:
    """The search folder in storage: <storage>/<name>, or the local search folder."""
    if not storage.uri:
        return Place(pafs.LocalFileSystem(), str(local_folder.resolve()))
    return locate(storage.uri, storage).child(name)


def check_storage(storage: StorageConfig, place: Place) -> None:
    """Reach the S3 storage and write (then remove) a probe there, before anything else is
    written (a local one: fit.check_writable). Raises ConfigError: one line naming the
    storage and what failed."""
    probe = Place(s3_filesystem(storage, quick=True), place.path)
    bucket = probe.path.split("/", 1)[0]
    where = masked(storage.endpoint) or "AWS S3"
    try:
        if probe.filesystem.get_file_info(bucket).type == pafs.FileType.NotFound:
            raise ConfigError(f"storage: bucket {bucket!r} does not exist at {where}; create "
                              f"it first (e.g. aws s3 mb s3://{bucket})")
        marker = probe.child(f".write-probe-{uuid.uuid4().hex[:12]}")
        marker.write_bytes(b"")
        marker.delete()
    except OSError as error:
        raise ConfigError(f"storage: cannot write to {masked(storage.uri)!r} at {where}: "
                          f"{_reason(error)}") from None


def _reason(error: OSError) -> str:
    """pyarrow's AWS error, shortened to its first clause, on one line."""
    message = " ".join(str(error).split())
    found = re.search(r"AWS Error ([A-Z_]+)[^:]*:\s*([^;(]*)", message)
    return masked(f"{found.group(1)}: {found.group(2).strip()}" if found else message[:200])
