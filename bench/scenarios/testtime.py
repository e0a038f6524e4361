"""Claim 2, "test time reduced 80 % with proper async fixtures": the same 50 API tests
(bench/naive/testtime/api_tests.py) run with the seed's fixtures (an engine and create_all per
test, serial) and with ours (one database per xdist worker, tables emptied per test, -n 2), on
PostgreSQL. Wall time of each pytest process, start to exit, pytest's own startup included."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

from bench import imports
from bench.harness import ROOT, Context, Row, ScenarioResult

SUITE = ROOT / "bench" / "naive" / "testtime"
TIMEOUT_S = 600


def pytest_run(suite: str, extra: list[str], env: dict[str, str]) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "pytest", "-c", str(SUITE / f"pytest-{suite}.ini"),
        str(SUITE / suite), "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *extra,
    ]  # fmt: skip
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
        check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    summary = (completed.stdout.strip().splitlines() or ["?"])[-1]
    if completed.returncode != 0:
        raise RuntimeError(f"{suite} suite failed: {summary}\n{completed.stdout[-2000:]}")
    return {"seconds": round(seconds, 2), "summary": summary}


def run(name: str, ctx: Context) -> ScenarioResult:
    seed_url = asyncio.run(imports.create_pg_database(ctx.admin_url))
    env = dict(os.environ) | {
        "PYTHONPATH": str(ROOT),
        "BENCH_TEST_DATABASE_URL": seed_url,
        "BENCH_TEST_ADMIN_URL": ctx.admin_url,
    }
    try:
        seed = pytest_run("seed", ["-p", "no:xdist"], env)
        ours = pytest_run("ours", ["-n", "2"], env)
        ours_serial = pytest_run("ours", ["-n", "0"], env)
    finally:
        asyncio.run(imports.drop_pg_database(ctx.admin_url, seed_url))
    return ScenarioResult(
        title="Test time: the seed's fixtures vs ours (claim 2)",
        what_it_measures=(
            "The same 50 API tests (httpx.ASGITransport, PostgreSQL) in two pytest processes. "
            "Seed: an engine and `create_all`/`drop_all` per test, serial. Ours: one database "
            "per xdist worker, tables created once, `TRUNCATE` per test, `-n 2` (and `-n 0` to "
            "tell the fixtures' share from the parallelism's). Wall time includes pytest's "
            "startup and, with -n 2, starting the workers."
        ),
        rows=[
            Row("wall time, ours -n 2", seed["seconds"], ours["seconds"], "s"),
            Row("wall time, ours serial (-n 0)", seed["seconds"], ours_serial["seconds"], "s"),
        ],
        naive_label="engine + create_all per test, serial",
        ours_label="db per worker, TRUNCATE per test",
        notes=[
            f"reduction with -n 2: {100 * (1 - ours['seconds'] / seed['seconds']):.0f} %; "
            f"serial: {100 * (1 - ours_serial['seconds'] / seed['seconds']):.0f} %",
            f"pytest said: seed '{seed['summary']}', ours '{ours['summary']}'",
        ],
        raw={"seed": seed, "ours": ours, "ours_serial": ours_serial},
    )
