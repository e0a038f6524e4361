"""A private PostgreSQL instance for scenarios that would disturb a shared server (hundreds of
connections, idle_session_timeout): initdb into a temporary directory as the `postgres` user,
started on its own port on 127.0.0.1, stopped by its pid, the directory removed at the end."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.uploads import free_port

START_TIMEOUT_S = 60.0


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: apt-get install -y postgresql")
    return path


@contextmanager
def private_postgres(**settings: str | int) -> Iterator[str]:
    """Yields a SQLAlchemy URL (asyncpg) of the instance's `postgres` database."""
    user = pwd.getpwnam("postgres")
    data = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    os.chown(data, user.pw_uid, user.pw_gid)
    subprocess.run(
        [_bin("initdb"), "-D", str(data / "db"), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True, capture_output=True, timeout=120, user=user.pw_uid, group=user.pw_gid,
        cwd=data,
    )  # fmt: skip
    port = free_port()
    options = {
        "listen_addresses": "127.0.0.1",
        "port": port,
        "unix_socket_directories": str(data),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "shared_buffers": "64MB",
        # The harness connects as superuser to count sessions even when the apps (another
        # role) have taken every other slot.
        "superuser_reserved_connections": 10,
        **settings,
    }
    command = [_bin("postgres"), "-D", str(data / "db")]
    for key, value in options.items():
        command += ["-c", f"{key}={value}"]
    log = (data / "postgres.log").open("ab")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        user=user.pw_uid, group=user.pw_gid, cwd=data,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            ready = subprocess.run(
                [_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
                capture_output=True, check=False,
            )  # fmt: skip
            if ready.returncode == 0:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private PostgreSQL did not start; see {data}/postgres.log")
            time.sleep(0.2)
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()
        shutil.rmtree(data, ignore_errors=True)
