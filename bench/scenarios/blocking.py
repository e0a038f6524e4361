"""Blocking calls in `async def`: two common mistakes measured on one app
(bench/naive/blocking_app.py) against a slow upstream (100 ms per call) on 127.0.0.1.

For each way of calling the upstream, for a bounded time: CALLERS concurrent clients call it,
PINGERS others call the unrelated /ping; we count both, take /ping's p99 and the app's own
event-loop lag samples. Each server runs in its own process and is stopped by pid.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from statistics import quantiles
from typing import Any

import httpx

from bench import plots
from bench.harness import Context, Row, ScenarioResult
from bench.uploads import free_port, start, stop

CALLERS = 16
PINGERS = 4
VARIANTS = {
    "blocking_requests": ("requests", "httpx"),
    "run_in_executor": ("executor", "to_thread", "httpx"),
}
LABELS = {
    "requests": "requests.get in async def",
    "executor": "run_in_executor(None, requests.get)",
    "to_thread": "anyio.to_thread.run_sync + CapacityLimiter(10)",
    "httpx": "await httpx.AsyncClient.get",
}


def _uvicorn(target: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def _p(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return quantiles(values, n=100, method="inclusive")[q - 1]


async def measure(base: str, variant: str, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    calls = 0
    call_errors = 0
    ping_latencies: list[float] = []
    limits = httpx.Limits(max_connections=CALLERS + PINGERS + 2)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        await client.get("/lag")  # clears the samples

        async def caller() -> None:
            nonlocal calls, call_errors
            while time.monotonic() < deadline:
                try:
                    response = await client.get(f"/call/{variant}")
                    calls += response.status_code == 200
                    call_errors += response.status_code != 200
                except httpx.HTTPError:
                    call_errors += 1

        async def pinger() -> None:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await client.get("/ping")
                if response.status_code == 200:
                    ping_latencies.append((time.perf_counter() - started) * 1000)

        started = time.monotonic()
        tasks = [caller() for _ in range(CALLERS)] + [pinger() for _ in range(PINGERS)]
        await asyncio.wait_for(asyncio.gather(*tasks), seconds + 60)
        elapsed = time.monotonic() - started
        lag = (await client.get("/lag")).json()
    lags = [ms for _, ms in lag]
    t0 = lag[0][0] if lag else 0.0
    return {
        "variant": variant,
        "seconds": round(elapsed, 2),
        "upstream_calls_per_s": round(calls / elapsed, 1),
        "call_errors": call_errors,
        "ping_per_s": round(len(ping_latencies) / elapsed, 1),
        "ping_p99_ms": round(_p(ping_latencies, 99), 1),
        "lag_p99_ms": round(_p(lags, 99), 1),
        "lag_max_ms": round(max(lags, default=0.0), 1),
        "lag_series": [(round(t - t0, 3), ms) for t, ms in lag],
    }


async def run_async(name: str, ctx: Context) -> dict[str, dict[str, Any]]:
    seconds = 4.0 if ctx.quick else 10.0
    upstream_port, app_port = free_port(), free_port()
    env = dict(os.environ) | {"BENCH_UPSTREAM": f"http://127.0.0.1:{upstream_port}/slow"}
    upstream = await start(
        _uvicorn("bench.naive.slow_upstream:app", upstream_port), env,
        f"http://127.0.0.1:{upstream_port}/slow",
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{app_port}"
        app = await start(_uvicorn("bench.naive.blocking_app:app", app_port), env, base + "/ping")
        try:
            return {v: await measure(base, v, seconds) for v in VARIANTS[name]}
        finally:
            await stop(app)
    finally:
        await stop(upstream)


def run(name: str, ctx: Context) -> ScenarioResult:
    results = asyncio.run(run_async(name, ctx))
    naive_key, ours_key = VARIANTS[name][0], VARIANTS[name][-1]

    def rows(naive: dict[str, Any], ours: dict[str, Any], suffix: str = "") -> list[Row]:
        return [
            Row("unrelated /ping req/s" + suffix, naive["ping_per_s"], ours["ping_per_s"],
                "req/s", "higher"),
            Row("unrelated /ping p99" + suffix, naive["ping_p99_ms"], ours["ping_p99_ms"], "ms"),
            Row("event-loop lag p99" + suffix, naive["lag_p99_ms"], ours["lag_p99_ms"], "ms"),
            Row("event-loop lag max" + suffix, naive["lag_max_ms"], ours["lag_max_ms"], "ms"),
            Row("upstream calls/s" + suffix, naive["upstream_calls_per_s"],
                ours["upstream_calls_per_s"], "calls/s", "higher"),
        ]  # fmt: skip

    table = rows(results[naive_key], results[ours_key])
    if "to_thread" in results:
        table += rows(results[naive_key], results["to_thread"], " (ours = to_thread+limiter)")
    plot = ctx.plot_path(f"{name}_loop_lag")
    plots.lines(
        plot, "Event-loop lag while the upstream is called", "seconds into the run",
        "lag (ms late on a 10 ms sleep)",
        {LABELS[v]: ([t for t, _ in r["lag_series"]], [ms for _, ms in r["lag_series"]])
         for v, r in results.items()},
        subtitle=f"{CALLERS} callers + {PINGERS} /ping clients, upstream 100 ms",
    )  # fmt: skip
    raw = {v: {k: x for k, x in r.items() if k != "lag_series"} for v, r in results.items()}
    title = {
        "blocking_requests": "`requests` in `async def` (common mistake)",
        "run_in_executor": "run_in_executor as a band-aid (common mistake)",
    }[name]
    return ScenarioResult(
        title=title,
        what_it_measures=(
            f"One uvicorn worker calls a 100 ms upstream on 127.0.0.1 from {CALLERS} concurrent "
            f"clients while {PINGERS} other clients call an unrelated /ping, "
            f"{results[naive_key]['seconds']:.0f} s per variant; the app samples its own "
            "event-loop lag (how late a 10 ms sleep wakes). "
            + " vs ".join(LABELS[v] for v in VARIANTS[name])
            + "."
        ),
        rows=table,
        naive_label=LABELS[naive_key],
        ours_label=LABELS[ours_key],
        plots=[str(plot.relative_to(plot.parents[2]))],
        raw=raw,
    )
