"""What `expose` costs: requests per second of a trivial function served by `Exposer.expose`
against the same function behind a hand-made endpoint (pattern 5 done by hand).

    .venv/bin/python -m bench.tools --rounds 3 --duration 5

One server process (uvicorn, one worker, uvloop + httptools, pinned to core 0) serves four
routes side by side, all `add(a: int, b: int) -> int` with a JSON body and `{"result": ...}`:

    /exposed/add_sync     tools.expose(add)              a sync function, in a worker thread
    /exposed/add_async    tools.expose(add_async)        awaited on the loop
    /manual/add_sync      def endpoint(body: AddArgs)    FastAPI runs it in its threadpool
    /manual/add_async     async def endpoint(body)       the hand-written async version

The app around them is the same for both (the project's problem handlers, no auth, no database),
so the difference is what `expose` adds per call. wrk (pinned to core 1) posts to each route in
turn, round after round (interleaved, so drift on a shared machine hits every case alike).
Every run is bounded (`--duration` ≤ 60 s) and everything listens on 127.0.0.1 only; the server
is stopped by its pid at the end, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CASES = ("exposed/add_sync", "manual/add_sync", "exposed/add_async", "manual/add_async")
MAX_DURATION_S = 60
READY_TIMEOUT_S = 30.0

LUA = """
wrk.method = "POST"
wrk.body = '{"a": 40, "b": 2}'
wrk.headers["Content-Type"] = "application/json"
ok = 0
bad = 0
function response(status, headers, body)
   if status == 200 then ok = ok + 1 else bad = bad + 1 end
end
threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
   local good, wrong = 0, 0
   for _, t in ipairs(threads) do good = good + t:get("ok"); wrong = wrong + t:get("bad") end
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "ok": %d, "not_ok": %d, '
      .. '"p50_us": %d, "p99_us": %d, "socket_errors": %d}\\n',
      summary.requests, summary.duration, good, wrong,
      latency:percentile(50), latency:percentile(99),
      summary.errors.connect + summary.errors.read + summary.errors.write
         + summary.errors.timeout))
end
"""


# --- the app under test (imported by the server process) ------------------------------------


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def add_async(a: int, b: int) -> int:
    """Add two integers, asynchronously."""
    return a + b


class AddArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: int
    b: int


class AddResult(BaseModel):
    result: int


def make_app() -> Any:
    """`uvicorn --factory bench.tools:make_app`."""
    from fastapi import FastAPI

    from app.core.error_handlers import install_error_handlers
    from app.expose import Exposer

    app = FastAPI(
        title="bench.tools",
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_error_handlers(app)

    tools = Exposer(prefix="/exposed", kind_prefix="bench_tools")
    tools.expose(add, name="add_sync")
    tools.expose(add_async)
    app.include_router(tools.router)

    @app.post("/manual/add_sync", response_model=AddResult)
    def manual_add_sync(body: AddArgs) -> AddResult:
        return AddResult(result=add(body.a, body.b))

    @app.post("/manual/add_async", response_model=AddResult)
    async def manual_add_async(body: AddArgs) -> AddResult:
        return AddResult(result=await add_async(body.a, body.b))

    return app


# --- the harness ----------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(port: int, log: Any) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.tools:make_app",
        "--factory",
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
    return subprocess.Popen(
        ["taskset", "-c", "0", *command],
        cwd=ROOT,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(process: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    body = json.dumps({"a": 40, "b": 2}).encode()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            for case in CASES:
                request = urllib.request.Request(  # noqa: S310  (http://127.0.0.1 only)
                    f"{base}/{case}", data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                    answer = json.load(response)
                    if answer != {"result": 42}:
                        raise RuntimeError(f"{case} answered {answer}")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"server not ready after {READY_TIMEOUT_S} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def run_wrk(url: str, script: Path, connections: int, duration_s: int) -> dict[str, Any]:
    command = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration_s}s"]
    command += ["--timeout", "10s", "--latency", "-s", str(script), url]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 30, check=True
    )
    match = re.search(r"^BENCH_RESULT (\{.*\})$", done.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no result from wrk:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(match.group(1))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.tools",
        description="req/s of a trivial function: expose vs a hand-made endpoint",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--duration", type=int, default=5, help=f"seconds per run, 1..{MAX_DURATION_S} (default 5)"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per case")
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= MAX_DURATION_S:
        parser.error(f"--duration must be 1..{MAX_DURATION_S}")
    if args.rounds < 1 or not 1 <= args.connections <= 1024:
        parser.error("--rounds >= 1 and --connections 1..1024")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"bench.tools needs `{tool}` (apt-get install -y wrk util-linux)")
    port = free_port()
    base = f"http://{HOST}:{port}"
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
    with tempfile.TemporaryDirectory(prefix="bench-tools-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(LUA)
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            process = start_server(port, log)
            try:
                wait_ready(process, base)
                for case in CASES:
                    run_wrk(f"{base}/{case}", script, args.connections, args.warmup)
                for round_number in range(1, args.rounds + 1):
                    for case in CASES:
                        result = run_wrk(f"{base}/{case}", script, args.connections, args.duration)
                        runs[case].append(result)
                        print(
                            f"round {round_number} {case:<18} {result['rps']:8.0f} req/s  "
                            f"p50 {result['p50_us'] / 1000:6.2f} ms  "
                            f"p99 {result['p99_us'] / 1000:6.2f} ms  "
                            f"non-200 {result['not_ok']}  socket errors {result['socket_errors']}",
                            flush=True,
                        )
            except BaseException:
                print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
                raise
            finally:
                stop(process)

    print(f"\nmedian of {args.rounds} rounds, {args.duration} s each, {args.connections} conns:")
    medians = {case: statistics.median(r["rps"] for r in runs[case]) for case in CASES}
    for kind in ("sync", "async"):
        exposed, manual = medians[f"exposed/add_{kind}"], medians[f"manual/add_{kind}"]
        print(
            f"  {kind:<5}  expose {exposed:8.0f} req/s   hand-made {manual:8.0f} req/s   "
            f"expose/hand-made {exposed / manual:5.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": None}, "runs": runs}))


if __name__ == "__main__":
    main()
