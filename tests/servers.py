"""A real `mlflow server` on 127.0.0.1 for the tests and benchmarks, in its own process group
(stopped by its pid), ready once /health answers."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.s3_server import free_port


def start_mlflow_server(backend: str, *extra: str, port: int | None = None
                        ) -> tuple[subprocess.Popen, str]:
    """`mlflow server` over the backend store URI (extra: more of its flags) on port (a free
    one when None); returns (process, base URL) once it answers /health.

    Raises:
        RuntimeError: it did not answer within 60 s (the process is then stopped).
    """
    port = port or free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--backend-store-uri", backend, *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(base + "/health", timeout=2).close()  # noqa: S310 - local
            return process, base
        except OSError:
            time.sleep(0.5)
    process.kill()
    process.wait()
    raise RuntimeError(f"mlflow server on {base} did not start")
