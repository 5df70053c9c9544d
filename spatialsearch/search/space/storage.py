"""Where a search keeps its Ray experiment (trial folders, checkpoints) and its results: the
local search folder (default), a shared folder every node mounts (NFS), or an S3-compatible
bucket, each as one pyarrow filesystem that Ray Tune writes through.

    storage: s3://bucket/prefix                                    # AWS S3
    storage: {uri: s3://bucket/prefix, endpoint: http://10.0.0.5:9000}  # S3-compatible store
    storage: /mnt/shared/searches                                  # a shared folder

The search folder in storage, <storage>/<name>/, mirrors the local <output>/<name>/: ray/<name>/
is Tune's experiment; results.csv, summary.json, pareto.csv, best/, analysis/ and report/ are
uploaded after the trials. The local folder keeps the MLflow and Optuna stores and the
checkpoints the driver fetched (only the ones the results, analysis and report read).
S3 credentials come from the standard AWS environment variables or ~/.aws files, on every
node; they are never part of the configuration, printed or logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from spatialsearch.errors import ConfigError
from spatialsearch.redact import masked
from spatialsearch.validation import check_keys, text

S3 = "s3://"
#: bucket names S3 accepts (3-63 characters: lower-case letters, digits, '.', '-')
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class StorageConfig:
    uri: str = ""       # "" = the local search folder; s3://bucket/prefix; /shared/folder
    endpoint: str = ""  # an S3-compatible store's URL (http(s)://host:port); "" = AWS

    @property
    def remote(self) -> bool:
        return self.uri.startswith(S3)


def parse_storage(raw: Any, path: str = "storage") -> StorageConfig:
    """`storage: URI` or `storage: {uri: URI, endpoint: URL}`, validated.

    Raises:
        ConfigError: an unknown scheme, a malformed bucket, a relative folder, an endpoint
            that is not http(s)://host[:port] or that holds credentials.
    """
    if raw is None:
        return StorageConfig()
    if isinstance(raw, Mapping):
        check_keys(raw, {"uri", "endpoint"}, f"{path}.")
        return StorageConfig(storage_uri(raw.get("uri", ""), f"{path}.uri"),
                             endpoint_url(raw.get("endpoint", ""), f"{path}.endpoint"))
    return StorageConfig(storage_uri(raw, path))


def storage_uri(raw: Any, path: str) -> str:
    uri = text(raw, path, empty=True).strip()
    if not uri:
        return ""
    if any(not c.isprintable() for c in uri):
        raise ConfigError(f"{path}: must not contain control characters, got {masked(uri)!r}")
    scheme = urlsplit(uri).scheme if "://" in uri else ""
    if scheme and masked(uri) != uri:  # never echo what was given as credentials
        raise ConfigError(f"{path}: must not hold credentials, got {masked(uri)!r}; S3 takes "
                          f"them from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or ~/.aws")
    if scheme == "file":
        uri = urlsplit(uri).path
    elif scheme == "s3":
        bucket = uri[len(S3):].split("/", 1)[0]
        if not _BUCKET.match(bucket):
            raise ConfigError(f"{path}: {masked(uri)!r} names no valid bucket (s3://<bucket>/<prefix>, "
                              f"bucket: 3-63 lower-case letters, digits, '.' or '-')")
        return uri.rstrip("/")
    elif scheme:
        raise ConfigError(f"{path}: unsupported scheme {scheme!r} in {masked(uri)!r}; allowed: s3://"
                          f"bucket/prefix, an absolute shared folder, or \"\" (the search "
                          f"folder)")
    if not uri.startswith("/"):
        raise ConfigError(f"{path}: a shared folder must be an absolute path every node "
                          f"mounts, got {masked(uri)!r}")
    return uri.rstrip("/") or "/"


def endpoint_url(raw: Any, path: str) -> str:
    url = text(raw, path, empty=True).strip()
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as error:
        raise ConfigError(f"{path}: malformed URL {masked(url)!r}: {error}") from error
    if parts.username or parts.password:  # never echo what was given as credentials
        raise ConfigError(f"{path}: must not hold credentials; set AWS_ACCESS_KEY_ID and "
                          f"AWS_SECRET_ACCESS_KEY (or ~/.aws/credentials) instead")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
        raise ConfigError(f"{path}: must be http(s)://host[:port], e.g. "
                          f"http://127.0.0.1:9000, got {masked(url)!r}")
    return url.rstrip("/")
