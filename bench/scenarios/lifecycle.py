"""Claim 1, "50 concurrent requests without errors after proper lifecycle management", and the
mistake "engine at import time": the three twins of bench/naive/lifecycle_app.py under wrk at
50, 256 and 1,024 connections, then sessions left in pg_stat_activity after SIGTERM and after
worker restarts (`--workers 4`, SIGHUP: uvicorn replaces each worker, SIGTERM to the old one).

Runs against a private PostgreSQL instance (max_connections 100, like the shared one), so that
exhausting its connections disturbs no one. Servers are stopped by pid; wrk is bounded."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench import plots, runner
from bench.database import plain_dsn
from bench.harness import Context, Row, ScenarioResult
from bench.private_pg import private_postgres
from bench.runner import Server, free_port, run_wrk
from bench.users_me import raise_open_files_limit

MODES = ("per_request", "at_import", "lifespan")
LABELS = {
    "per_request": "engine per request",
    "at_import": "engine at import, no dispose",
    "lifespan": "ours: lifespan pool + dispose",
}
SETTLE_S = 5.0


def sessions(url: str, mode: str) -> int:
    async def count() -> int:
        for _ in range(20):  # a backend that is still exiting may hold the last slot
            try:
                connection = await asyncpg.connect(plain_dsn(url), timeout=10)
                break
            except asyncpg.TooManyConnectionsError:
                await asyncio.sleep(0.5)
        else:
            raise RuntimeError("no connection slot left to count sessions")
        try:
            return int(await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                f"bench-lifecycle-{mode}",
            ))  # fmt: skip
        finally:
            await connection.close()

    return asyncio.run(count())


def settled_sessions(url: str, mode: str) -> int:
    """Sessions left once the count stops falling (or after SETTLE_S)."""
    deadline = time.monotonic() + SETTLE_S
    left = sessions(url, mode)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = sessions(url, mode)
    return left


def server(mode: str, url: str, log: Path, workers: int = 1) -> Server:
    port = free_port()
    env = dict(os.environ) | {"BENCH_LIFECYCLE_MODE": mode, "BENCH_DATABASE_URL": url}
    command = [
        sys.executable, "-m", "uvicorn", "bench.naive.lifecycle_app:app", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip
    return Server(mode, command, env, port, log)


def errors(result: dict[str, Any]) -> int:
    keys = ("status_4xx", "status_500", "status_503", "status_5xx_other", "status_other",
            "socket_connect", "socket_read", "socket_write", "socket_timeout")  # fmt: skip
    return int(sum(result.get(k, 0) for k in keys))


def load_runs(url: str, admin_url: str, ctx: Context, tokens: Path) -> list[dict[str, Any]]:
    conns_list = [50, 256] if ctx.quick else [50, 256, 1024]
    seconds = 2 if ctx.quick else 10
    runs = []
    for conns in conns_list:
        for mode in MODES:  # interleaved: drift hits all three alike
            srv = server(mode, url, ctx.work_dir / f"lifecycle-{mode}.log")
            srv.start()
            try:
                srv.wait_ready("x")
                result = run_wrk(srv.url, tokens, conns, seconds)
                during = sessions(admin_url, mode)
            finally:
                srv.stop()
            left = settled_sessions(admin_url, mode)
            run = {
                "mode": mode,
                "conns": conns,
                "errors": errors(result),
                "sessions_after_load": during,
                "sessions_after_sigterm": left,
                **result,
            }
            runs.append(run)  # fmt: skip
            print(f"   {mode:<12} c={conns:<5} {result['rps']:>8,.0f} req/s  "
                  f"p99 {result['latency_p99_us'] / 1000:.0f} ms  errors {run['errors']}  "
                  f"sessions {during} -> {left} after SIGTERM", flush=True)  # fmt: skip
    return runs


def restart_runs(url: str, admin_url: str, ctx: Context, tokens: Path) -> dict[str, list[int]]:
    restarts = 1 if ctx.quick else 4
    workers = 2 if ctx.quick else 4
    load_seconds = 1 if ctx.quick else 2
    counts: dict[str, list[int]] = {}
    for mode in MODES:
        srv = server(mode, url, ctx.work_dir / f"restart-{mode}.log", workers=workers)
        srv.start()
        series = []
        try:
            srv.wait_ready("x")
            for _ in range(restarts + 1):
                run_wrk(srv.url, tokens, 50, load_seconds)
                series.append(sessions(admin_url, mode))
                assert srv.process is not None
                os.kill(srv.process.pid, signal.SIGHUP)  # the master: replaces every worker
                time.sleep(1)
                srv.wait_ready("x")
        finally:
            srv.stop()
        series.append(settled_sessions(admin_url, mode))
        counts[mode] = series
        print(f"   {mode:<12} sessions per restart, then after SIGTERM: {series}", flush=True)
    return counts


def app_role_url(admin_url: str) -> str:
    """A login role that is not a superuser: the apps may exhaust max_connections, the
    harness (superuser) still gets one of the reserved slots to count sessions."""

    async def create() -> None:
        connection = await asyncpg.connect(plain_dsn(admin_url), timeout=10)
        try:
            await connection.execute("CREATE ROLE bench_app LOGIN")
        finally:
            await connection.close()

    asyncio.run(create())
    return admin_url.replace("://postgres@", "://bench_app@")


def run(name: str, ctx: Context) -> ScenarioResult:
    raise_open_files_limit()
    runner.READY_TIMEOUT_S = 120.0  # 4 workers starting on a busy 2-core machine
    tokens = ctx.work_dir / "lifecycle-tokens.txt"
    tokens.write_text("x\n")
    with private_postgres(max_connections=100) as admin_url:
        url = app_role_url(admin_url)
        runs = load_runs(url, admin_url, ctx, tokens)
        restarts = restart_runs(url, admin_url, ctx, tokens)
    rows = []
    conns_list = sorted({r["conns"] for r in runs})
    by = {(r["mode"], r["conns"]): r for r in runs}
    for naive in ("per_request", "at_import"):
        for conns in conns_list:
            a, b = by[(naive, conns)], by[("lifespan", conns)]
            rows += [
                # wrk does not count requests still pending when the run ends: 2xx says how
                # many were answered at all.
                Row(f"{LABELS[naive]}, c={conns}: 2xx answers", a["status_2xx"],
                    b["status_2xx"], "requests", "higher"),
                Row(f"{LABELS[naive]}, c={conns}: errors", a["errors"], b["errors"], "requests"),
                Row(f"{LABELS[naive]}, c={conns}: req/s", a["rps"], b["rps"], "req/s", "higher"),
                Row(f"{LABELS[naive]}, c={conns}: p99", round(a["latency_p99_us"] / 1000, 1),
                    round(b["latency_p99_us"] / 1000, 1), "ms"),
            ]  # fmt: skip
        rows.append(Row(f"{LABELS[naive]}: sessions left after SIGTERM (worst)",
                        max(by[(naive, c)]["sessions_after_sigterm"] for c in conns_list),
                        max(by[("lifespan", c)]["sessions_after_sigterm"] for c in conns_list),
                        "sessions"))  # fmt: skip
        rows.append(
            Row(
                f"{LABELS[naive]}: sessions, most during restarts (`--workers 4`, 2 with --quick)",
                max(restarts[naive][:-1]),
                max(restarts["lifespan"][:-1]),
                "sessions",
            )
        )
        rows.append(
            Row(
                f"{LABELS[naive]}: sessions left after restarts + SIGTERM",
                restarts[naive][-1],
                restarts["lifespan"][-1],
                "sessions",
            )
        )
    plot_paths = []
    for metric, label in (("rps", "req/s"), ("latency_p99_us", "p99 (ms)")):
        path = ctx.plot_path(f"lifecycle_{metric}")
        scale = 1000 if metric == "latency_p99_us" else 1
        plots.lines(path, f"{label} against connections", "wrk connections", label,
                    {LABELS[m]: (conns_list, [by[(m, c)][metric] / scale for c in conns_list])
                     for m in MODES}, logx=True)  # fmt: skip
        plot_paths.append(str(path.relative_to(path.parents[2])))
    return ScenarioResult(
        title="Engine lifecycle under load (claim 1; mistake: engine at import time)",
        what_it_measures=(
            "One uvicorn worker per twin (only the engine's lifecycle differs), `SELECT 1` per "
            "request, wrk on 127.0.0.1 (10 s timeout per request), a private PostgreSQL with "
            "max_connections 100. Errors are non-2xx answers plus socket errors and timeouts. "
            "Sessions are counted in pg_stat_activity by application_name: after the load, "
            "after SIGTERM, and with 4 workers across SIGHUP restarts (uvicorn replaces each "
            "worker, SIGTERM to the old one)."
        ),
        rows=rows,
        naive_label="engine per request / engine at import",
        ours_label="lifespan pool",
        plots=plot_paths,
        raw={"runs": runs, "restarts": restarts},
    )
