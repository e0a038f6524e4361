"""A private PostgreSQL instance for scenarios and tests that would disturb a shared server
(hundreds of connections, idle_session_timeout, the server stopped and restarted): initdb into
a temporary directory, started on its own port on 127.0.0.1, stopped by its pid, the directory
removed at the end. Run as the `postgres` user when we are root (PostgreSQL refuses root).

`private_postgres()` is the one-shot form the benchmarks use; the fault tests
(tests/faults/) drive a `PrivatePostgres` themselves to stop and start it under load. Every
method blocks (subprocesses, waits): async callers run them in a worker thread.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Literal

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0

# How `pg_ctl stop -m MODE` asks the postmaster to stop: the signal it sends.
STOP_SIGNALS = {
    "smart": signal.SIGTERM,  # waits for every client to disconnect
    "fast": signal.SIGINT,  # ends every session, then a clean shutdown
    "immediate": signal.SIGQUIT,  # no shutdown checkpoint: crash recovery at the next start
}
StopMode = Literal["smart", "fast", "immediate"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(name: str) -> str | None:
    """A PostgreSQL program: the newest installed server's, else the one on PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _bin(name: str) -> str:
    path = find_binary(name)
    if path is None:
        raise RuntimeError(f"{name} not found: apt-get install -y postgresql")
    return path


def missing_requirement() -> str | None:
    """Why a private instance cannot be started here, or None when it can."""
    for name in ("initdb", "postgres", "pg_isready"):
        if find_binary(name) is None:
            return f"the PostgreSQL server program {name} is not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no `postgres` user to run PostgreSQL as"
    return None


class PrivatePostgres:
    """One instance: `initdb()` once, then `start()` and `stop()` as often as wanted (the same
    port and data each time), `remove()` at the end."""

    def __init__(self, **settings: str | int) -> None:
        account = pwd.getpwnam("postgres") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
        self.uid, self.gid = account.pw_uid, account.pw_gid
        # Found once: a search of the file system, which async callers must not repeat.
        self.programs = {name: _bin(name) for name in ("initdb", "postgres", "pg_isready")}
        self.directory = Path(tempfile.mkdtemp(prefix="private-pg-"))
        os.chown(self.directory, self.uid, self.gid)
        self.port = free_port()
        self.options: dict[str, str | int] = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": str(self.directory),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "64MB",
            # The harness connects as superuser to count sessions even when the apps (another
            # role) have taken every other slot.
            "superuser_reserved_connections": 10,
            **settings,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """A SQLAlchemy URL (asyncpg) of the instance's `postgres` database."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log_path(self) -> Path:
        return self.directory / "postgres.log"

    def isready_command(self) -> list[str]:
        """`pg_isready` for this instance: exit status 0 once it accepts connections."""
        return [
            self.programs["pg_isready"],
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
        ]

    def initdb(self) -> None:
        subprocess.run(
            [self.programs["initdb"], "-D", str(self.directory / "db"), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, timeout=120, user=self.uid, group=self.gid,
            cwd=self.directory,
        )  # fmt: skip

    def launch(self) -> None:
        """Start the postmaster and return at once (see `wait_until_ready`)."""
        assert self.process is None or self.process.poll() is not None, "already running"
        command = [self.programs["postgres"], "-D", str(self.directory / "db")]
        for key, value in self.options.items():
            command += ["-c", f"{key}={value}"]
        if self._log is None:
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            user=self.uid, group=self.gid, cwd=self.directory,
        )  # fmt: skip

    def wait_until_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while subprocess.run(self.isready_command(), check=False).returncode != 0:
            exited = self.process is None or self.process.poll() is not None
            if exited or time.monotonic() > deadline:
                raise RuntimeError(f"private PostgreSQL did not start; see {self.log_path}")
            time.sleep(0.1)

    def start(self) -> None:
        self.launch()
        self.wait_until_ready()

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the postmaster as `pg_ctl stop -m MODE` would, and wait for it to exit."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(STOP_SIGNALS[mode])
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def remove(self) -> None:
        """Stop it (fast), and delete its data directory."""
        try:
            self.stop("fast")
        finally:
            if self._log is not None:
                self._log.close()
            shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def private_postgres(**settings: str | int) -> Iterator[str]:
    """Yields a SQLAlchemy URL (asyncpg) of the instance's `postgres` database."""
    instance = PrivatePostgres(**settings)
    try:
        instance.initdb()
        instance.start()
        yield instance.url
    finally:
        instance.remove()
