"""Load benchmark: the service's GET /api/v1/users/me against a raw-asyncpg reference app.

    .venv/bin/python -m bench users_me [--rounds 3] [--duration 10] [--connections 64,256]
        [--overload]

Both servers run one uvicorn worker pinned to core 0, wrk runs pinned to core 1, on loopback,
against a freshly created, migrated and seeded PostgreSQL database that is dropped at the end.
Rounds are interleaved (each round: every connection count, service then reference, each in a
fresh process with a 3 s warm-up), so drift on the machine hits both alike. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import database, report
from bench.runner import (
    ROOT,
    Server,
    free_port,
    reference_server,
    run_wrk,
    server_latency_buckets,
    server_p99_bound,
    service_server,
)

DESCRIPTION = "Load benchmark: GET /api/v1/users/me, the service against a raw-asyncpg app."
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_fpp"
# Fixed, so tokens minted here verify in both servers; 48 bytes (>= 32 required in production).
SECRET_KEY = "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
USERS = 10_000
TOKEN_TTL_SECONDS = 3600  # longer than any bounded run, including --overload
WARMUP_SECONDS = 3
WARMUP_CONNECTIONS = 64
OVERLOAD_CONNECTIONS = 1024
OVERLOAD_SECONDS = 45
RESULTS_DIR = ROOT / "bench" / "results"
# wrk and the servers each need a descriptor per connection (1,024 with --overload).
MIN_OPEN_FILES = 8192


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench users_me", description=DESCRIPTION)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument(
        "--connections",
        default="64,256",
        help="comma-separated wrk connection counts (default 64,256)",
    )
    parser.add_argument(
        "--overload",
        action="store_true",
        help=f"also one {OVERLOAD_SECONDS} s run at {OVERLOAD_CONNECTIONS} connections per server",
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="bench database, dropped and recreated (default %(default)s)",
    )
    parser.add_argument("--only", choices=report.CASES, help="run one server only")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the service process (repeatable), "
        "e.g. --env DB_POOL_PRE_PING=false",
    )
    args = parser.parse_args(argv)
    try:
        args.connections = [int(c) for c in args.connections.split(",") if c.strip()]
    except ValueError:
        parser.error("--connections takes integers, e.g. 64,256")
    if not args.connections or min(args.connections) < 1:
        parser.error("--connections needs at least one positive count")
    if args.rounds < 1 or args.duration < 1:
        parser.error("--rounds and --duration must be positive")
    extra: dict[str, str] = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--env takes KEY=VALUE, got {item!r}")
        extra[key] = value
    args.extra_env = extra
    return args


def check_prerequisites() -> None:
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        sys.exit(2)
    if shutil.which("taskset") is None:
        print("taskset is not installed: apt-get install -y util-linux", file=sys.stderr)
        sys.exit(2)
    if len(os.sched_getaffinity(0)) < 2:
        print("need at least 2 CPUs (server on core 0, wrk on core 1)", file=sys.stderr)
        sys.exit(2)


def raise_open_files_limit() -> None:
    # Inherited by every child we start (servers and wrk).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MIN_OPEN_FILES if hard == resource.RLIM_INFINITY else min(MIN_OPEN_FILES, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def git_commit() -> str:
    completed = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() or "unknown"


def git_dirty_paths() -> list[str]:
    """Uncommitted changes under app/ and migrations/: the service runs from the working tree,
    so the commit alone does not say what was measured."""
    completed = subprocess.run(
        ["git", "status", "--porcelain", "--", "app", "migrations"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return [line[3:] for line in completed.stdout.splitlines() if line.strip()]


class Bench:
    """Holds the run's fixed inputs and the one server that may be running at a time."""

    def __init__(
        self,
        args: argparse.Namespace,
        tokens_file: Path,
        sample_token: str,
        log_dir: Path,
        results_file: Path,
    ) -> None:
        self.args = args
        self.tokens_file = tokens_file
        self.sample_token = sample_token
        self.log_dir = log_dir
        self.results_file = results_file
        self.current: Server | None = None
        self.bodies: dict[str, dict[str, Any]] = {}
        self.log_counts: dict[str, Counter[str]] = {}

    def _server(self, case: str) -> Server:
        port = free_port()
        log_path = self.log_dir / f"{case}.log"
        if case == "service":
            return service_server(
                port, self.args.database_url, SECRET_KEY, self.args.extra_env, log_path
            )
        return reference_server(
            port, database.plain_dsn(self.args.database_url), SECRET_KEY, log_path
        )

    def measure(
        self, case: str, conns: int, duration_s: int, round_no: int, phase: str
    ) -> dict[str, Any]:
        """Fresh server process, readiness check, warm-up, one measured wrk run, stop."""
        server = self._server(case)
        offset = server.log_path.stat().st_size if server.log_path.exists() else 0
        self.current = server
        try:
            server.start()
            body = server.wait_ready(self.sample_token)
            self._check_same_body(case, body)
            run_wrk(server.url, self.tokens_file, WARMUP_CONNECTIONS, WARMUP_SECONDS)
            sessions_before = asyncio.run(database.sessions_opened(self.args.database_url))
            latency_before = server_latency_buckets(server.url)
            result = run_wrk(server.url, self.tokens_file, conns, duration_s)
            latency_after = server_latency_buckets(server.url)
            sessions_after = asyncio.run(database.sessions_opened(self.args.database_url))
        finally:
            server.stop()
            self.current = None
        with server.log_path.open(errors="replace") as log:
            log.seek(offset)
            counts = report.summarise_log(log.read())
        self.log_counts.setdefault(case, Counter()).update(counts)
        record = {
            "kind": "run",
            "phase": phase,
            "round": round_no,
            "case": case,
            "conns": conns,
            "duration_s": duration_s,
            # The measuring connection itself is one of the sessions counted "after".
            "new_pg_sessions": max(0, sessions_after - sessions_before - 1),
            "log_warnings": dict(counts),
            "server_p99_le_s": (
                server_p99_bound(latency_before, latency_after)
                if latency_before is not None and latency_after is not None
                else None
            ),
            **result,
        }
        with self.results_file.open("a") as out:
            out.write(json.dumps(record) + "\n")
        print(
            f"  {phase} R{round_no} {case:<9} c={conns:<5} {result['rps']:>9,.0f} req/s  "
            f"p50 {result['latency_p50_us'] / 1000:.1f} ms  "
            f"p99 {result['latency_p99_us'] / 1000:.1f} ms  "
            + (
                f"(in the app: p99 <= {record['server_p99_le_s']:g} s)  "
                if record["server_p99_le_s"] is not None
                else ""
            )
            + f"non-2xx {result['non_2xx']}  timeouts {result['socket_timeout']}  "
            f"log warnings {sum(counts.values())}",
            flush=True,
        )
        return record

    def _check_same_body(self, case: str, body: dict[str, Any]) -> None:
        # Both servers must answer the same token with the same JSON, or the comparison is moot.
        self.bodies[case] = body
        if (
            len(self.bodies) == len(report.CASES)
            and len({json.dumps(b, sort_keys=True) for b in self.bodies.values()}) != 1
        ):
            raise RuntimeError(f"service and reference disagree: {self.bodies}")

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark; return the measured runs (rounds, then overload) for the harness."""
    args = parse_args(argv)
    check_prerequisites()
    raise_open_files_limit()
    cases = [args.only] if args.only else list(report.CASES)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(exist_ok=True)
    results_file = RESULTS_DIR / f"{stamp}.jsonl"
    log_dir = Path(tempfile.mkdtemp(prefix=f"bench-fpp-{stamp}-"))
    work_dir = Path(tempfile.mkdtemp(prefix="bench-fpp-tokens-"))
    tokens_file = work_dir / "tokens.txt"

    meta = {
        "kind": "meta",
        "started": stamp,
        "commit": git_commit(),
        "dirty": git_dirty_paths(),
        "args": sys.argv[1:],
        "rounds": args.rounds,
        "duration_s": args.duration,
        "connections": args.connections,
        "overload": args.overload,
        "service_env": args.extra_env,
        "users": USERS,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    results_file.write_text(json.dumps(meta) + "\n")
    print(f"results: {results_file}\nserver logs: {log_dir}", flush=True)

    bench: Bench | None = None
    runs: list[dict[str, Any]] = []
    overload_runs: list[dict[str, Any]] = []
    try:
        print(
            f"setup: recreate, migrate and seed {database.database_name(args.database_url)}",
            flush=True,
        )
        asyncio.run(database.recreate(args.database_url))
        database.migrate(args.database_url)
        user_ids = asyncio.run(database.seed_users(args.database_url, USERS))
        database.write_tokens(user_ids, SECRET_KEY, tokens_file, TOKEN_TTL_SECONDS)
        sample_token = tokens_file.read_text().split("\n", 1)[0]
        bench = Bench(args, tokens_file, sample_token, log_dir, results_file)

        started = time.monotonic()
        for round_no in range(1, args.rounds + 1):
            for conns in args.connections:
                for case in cases:
                    runs.append(bench.measure(case, conns, args.duration, round_no, "rounds"))
        if args.overload:
            for case in cases:
                overload_runs.append(
                    bench.measure(case, OVERLOAD_CONNECTIONS, OVERLOAD_SECONDS, 1, "overload")
                )
        print(f"done in {time.monotonic() - started:.0f} s\n")

        print(report.rounds_table(runs))
        print()
        for line in report.ratio_lines(runs):
            print(line)
        if overload_runs:
            print()
            print(report.overload_table(overload_runs))
            for line in report.overload_lines(overload_runs):
                print(line)
        print()
        for case in cases:
            counts = bench.log_counts.get(case)
            print(
                f"{case} log ({log_dir / (case + '.log')}): "
                + ("no warnings or errors" if not counts else "")
            )
            for key, count in (counts or Counter()).most_common(10):
                print(f"  {count:>7}  {key}")
    finally:
        if bench is not None:
            bench.stop()
        try:
            asyncio.run(database.drop(args.database_url))
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
    return runs + overload_runs


if __name__ == "__main__":
    main()
