"""A real PostgreSQL server (Debian's `postgresql`) for the tracking tests: initdb in a
scratch folder, `postgres` on 127.0.0.1 and a free port with password authentication, stopped
by its process id. As root it runs as the `postgres` user (PostgreSQL refuses root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

from tests.s3_server import free_port

USER, PASSWORD = "spatial", "pg-secret-7f3a"


def binaries() -> Path | None:
    """The folder of initdb and postgres, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def why_not() -> str:
    """Why the PostgreSQL tests cannot run here ('' when they can)."""
    if binaries() is None:
        return "PostgreSQL is not installed (make test installs Debian's postgresql as root)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e .)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres user to run the server as"
    return ""


def serve() -> Iterator[str]:
    """Start a server in a new scratch folder; yield its admin URI (database `postgres`); stop
    it by pid and remove the folder. The folder is made directly under the system's temporary
    folder: the postgres user must reach it, and pytest's own folders are root's alone."""
    folder = binaries()
    scratch = Path(tempfile.mkdtemp(prefix="spatialsearch-postgres-"))
    data = scratch / "pgdata"
    user = "postgres" if os.geteuid() == 0 else None
    (scratch / "pw").write_text(PASSWORD + "\n")
    if user:
        entry = pwd.getpwnam(user)
        for path in (scratch, scratch / "pw"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    made = subprocess.run([str(folder / "initdb"), "-D", str(data), "-U", USER,
                           "--auth=scram-sha-256", f"--pwfile={scratch / 'pw'}", "-E", "UTF8",
                           "--no-sync"], user=user, capture_output=True, text=True)
    if made.returncode:
        shutil.rmtree(scratch, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {made.stderr.strip()[-500:]}")
    port = free_port()
    log = open(scratch / "postgres.log", "wb")
    process = subprocess.Popen(
        [str(folder / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
         "-k", str(scratch), "-c", "fsync=off", "-c", "max_connections=50"],
        user=user, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    admin = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"
    try:
        import psycopg

        for _ in range(120):
            try:
                psycopg.connect(admin, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if process.poll() is not None:
                    raise RuntimeError((scratch / "postgres.log").read_text()[-500:])
                time.sleep(0.25)
        else:
            raise RuntimeError("postgres did not accept connections within 30 s")
        yield admin
    finally:
        process.terminate()  # smart shutdown of this server, by its pid
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)


def new_database(admin: str) -> str:
    """A fresh, empty database on the server; its URI (with the password)."""
    import psycopg

    name = f"mlflow_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + f"/{name}"
