"""A real S3-compatible server for the tests: moto's server mode on 127.0.0.1, started as a
process of its own and stopped by its process id. Credentials are the test's own dummies, in
the environment the standard AWS way (never in a configuration)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pyarrow.fs as pafs

from tests.processes import kill_tree

#: the standard AWS variables the server accepts; set for the test process and what it starts
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-key-id", "AWS_SECRET_ACCESS_KEY": "test-secret-42",
               "AWS_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(log: Path) -> tuple[subprocess.Popen, str]:
    """moto's server on a free port of 127.0.0.1; returns (process, endpoint URL)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env={**os.environ, **CREDENTIALS})
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=2)  # noqa: S310 - local
            return server, endpoint
        except OSError:
            time.sleep(0.3)
    kill_tree(server.pid)
    raise RuntimeError(f"moto server did not start: {log.read_text()[-2000:]}")


def filesystem(endpoint: str) -> pafs.S3FileSystem:
    """The server as a pyarrow filesystem that may create buckets (the tests' own)."""
    return pafs.S3FileSystem(endpoint_override=endpoint.split("://", 1)[1], scheme="http",
                             region="us-east-1", allow_bucket_creation=True,
                             access_key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                             secret_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


def objects(endpoint: str, prefix: str) -> dict[str, int]:
    """Every object under bucket/prefix -> its size."""
    found = filesystem(endpoint).get_file_info(
        pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    return {i.path: i.size for i in found if i.type == pafs.FileType.File}


def serve(log: Path) -> Iterator[str]:
    """Yield the endpoint of a fresh server with the credentials in os.environ; stop it
    (by pid) and restore the environment afterwards."""
    before = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    server, endpoint = start_server(log)
    try:
        yield endpoint
    finally:
        kill_tree(server.pid)
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
