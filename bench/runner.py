"""Server processes and wrk runs: start pinned, wait until ready, measure, stop by pid."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
LUA_SCRIPT = ROOT / "bench" / "users_me.lua"
HOST = "127.0.0.1"  # loopback only
SERVER_CPU = "0"
WRK_CPU = "1"
USERS_ME = "/api/v1/users/me"
# wrk gives up on a request after this long and counts a timeout.
WRK_TIMEOUT = "10s"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """One server process pinned to core 0, its output going to `log_path`."""

    case: str
    command: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self._log.write(f"\n=== start {time.strftime('%H:%M:%S')} {self.command}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *self.command],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own session: a Ctrl-C at the terminal reaches only us, and we stop it by pid.
            start_new_session=True,
        )

    def wait_ready(self, token: str) -> dict[str, Any]:
        """Poll GET /users/me until it answers 200; return the body (checked by the caller)."""
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        # Always http://127.0.0.1:<port>, built above, so no file: or custom scheme can sneak in.
        request = urllib.request.Request(  # noqa: S310
            self.url + USERS_ME, headers={"Authorization": f"Bearer {token}"}
        )
        last_error = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.case} exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                    body: dict[str, Any] = json.load(response)
                    return body
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last_error = str(exc)
                time.sleep(0.2)
        raise RuntimeError(f"{self.case} not ready after {READY_TIMEOUT_S}s: {last_error}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers (taskset execs the server in place, so this is
        the process we started). Then whatever is left of its process group, which is ours
        alone (its own session): a `--workers N` master killed before it reaped its workers
        would leave them running, and loading the next scenario's machine."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


def service_server(
    port: int, database_url: str, secret: str, extra_env: dict[str, str], log_path: Path
) -> Server:
    # No Redis unless asked for with --env REDIS_URL=...: the reference has none either.
    inherited = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env = {
        **inherited,
        "DATABASE_URL": database_url,
        "SECRET_KEY": secret,
        "ENVIRONMENT": "production",
        # Production refuses the sandbox gateway; no scenario charges a card.
        "PAYMENT_GATEWAY": "http",
        "PAYMENT_GATEWAY_URL": "https://gateway.invalid/v1",
        "LOG_LEVEL": "WARNING",
        **extra_env,
    }
    command = [
        sys.executable,
        "-m",
        "app",
        "serve",
        "--no-migrate",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return Server("service", command, env, port, log_path)


def reference_server(port: int, dsn: str, secret: str, log_path: Path) -> Server:
    env = {**os.environ, "BENCH_REFERENCE_DSN": dsn, "SECRET_KEY": secret}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.reference_app:app",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--no-server-header",
        "--log-level",
        "warning",
    ]
    return Server("reference", command, env, port, log_path)


_LATENCY_BUCKET = re.compile(
    r'^http_request_duration_seconds_bucket\{le="([^"]+)",method="GET",route="'
    + re.escape(USERS_ME)
    + r'"\} (\S+)$'
)


def server_latency_buckets(url: str) -> dict[float, float] | None:
    """The service's own latency histogram for GET /users/me (cumulative count per bucket bound,
    from GET /metrics); None for a server without one (the reference)."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as response:  # noqa: S310
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    buckets = {}
    for line in text.splitlines():
        match = _LATENCY_BUCKET.match(line)
        if match:
            buckets[float(match.group(1))] = float(match.group(2))  # "+Inf" parses as inf
    return buckets or None


def server_p99_bound(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The smallest bucket bound that holds 99 % of the requests served between two scrapes:
    the server's p99 (middleware start to end) rounded up to a bucket. Far below wrk's p99, it
    says the wait was outside the app."""
    total = after[float("inf")] - before.get(float("inf"), 0.0)
    if total <= 0:
        return None
    for bound in sorted(after):
        if after[bound] - before.get(bound, 0.0) >= 0.99 * total:
            return bound
    return None


def _cpu_times() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies per CPU from /proc/stat."""
    times: dict[str, tuple[int, int]] = {}
    with open("/proc/stat") as stat:
        for line in stat:
            name, *values = line.split()
            if not (name.startswith("cpu") and name != "cpu"):
                continue
            numbers = [int(v) for v in values]
            idle = numbers[3] + numbers[4]  # idle + iowait
            times[name] = (sum(numbers) - idle, sum(numbers))
    return times


def _busy_percent(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, float]:
    busy: dict[str, float] = {}
    for name, (busy_after, total_after) in after.items():
        busy_before, total_before = before.get(name, (0, 0))
        total = total_after - total_before
        busy[name] = round(100 * (busy_after - busy_before) / total, 1) if total else 0.0
    return busy


def run_wrk(url: str, tokens_file: Path, connections: int, duration_s: int) -> dict[str, Any]:
    """One wrk run pinned to core 1; returns the script's JSON plus req/s and CPU busy %."""
    command = [
        "taskset",
        "-c",
        WRK_CPU,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--timeout",
        WRK_TIMEOUT,
        "--latency",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(tokens_file),
    ]
    before = _cpu_times()
    completed = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=duration_s + 60,  # bounded even if wrk hangs
    )
    busy = _busy_percent(before, _cpu_times())
    for line in completed.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            break
    else:
        raise RuntimeError(
            f"wrk printed no result (exit {completed.returncode}):\n"
            f"{completed.stdout}\n{completed.stderr}"
        )
    seconds = result["duration_us"] / 1e6
    result["rps"] = round(result["requests"] / seconds, 1) if seconds else 0.0
    result["ok_rps"] = round(result["status_2xx"] / seconds, 1) if seconds else 0.0
    result["cpu_busy_percent"] = {
        "server_core": busy.get(f"cpu{SERVER_CPU}", 0.0),
        "wrk_core": busy.get(f"cpu{WRK_CPU}", 0.0),
    }
    # Other processes on the machine skew a run: the 1-minute load average after it shows that.
    result["loadavg_1m"] = os.getloadavg()[0]
    # Recorded relative to the repository: committed results name no path of this machine.
    # The token file lives in a temporary folder: named by its file name alone.
    result["wrk_command"] = re.sub(
        r"/\S*/([^/\s]+)$", r"\1", " ".join(command[3:]).replace(f"{ROOT}/", "")
    )
    return result
