"""Mistake: no `pool_recycle` (nor pre-ping) when the server drops idle connections. A private
PostgreSQL instance with `idle_session_timeout` set low; each cycle runs a burst of concurrent
queries (the pool fills), stays idle longer than the timeout (the server ends those sessions),
then runs the next burst: how many queries fail? Three engines, same pool size:
- naive: `create_async_engine(url)` (no recycle, no pre-ping);
- `pool_recycle` below the server's timeout (the seed's advice, scaled to the run);
- `pool_pre_ping=True` (a round trip per checkout)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.harness import Context, Row, ScenarioResult
from bench.private_pg import private_postgres

IDLE_TIMEOUT_S = 2
BURST = 10


async def burst(engine: AsyncEngine) -> tuple[int, int]:
    async def one() -> bool:
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT pg_sleep(0.05)"))
            return True
        except DBAPIError:
            return False

    results = await asyncio.gather(*(one() for _ in range(BURST)))
    return sum(results), len(results) - sum(results)


async def measure(url: str, cycles: int, **options: Any) -> dict[str, Any]:
    engine = create_async_engine(url, pool_size=BURST, **options)
    ok = failed = 0
    started = time.perf_counter()
    try:
        await burst(engine)  # fills the pool
        for _ in range(cycles):
            await asyncio.sleep(IDLE_TIMEOUT_S * 1.5)
            good, bad = await burst(engine)
            ok, failed = ok + good, failed + bad
    finally:
        await engine.dispose()
    return {"ok": ok, "failed": failed, "seconds": round(time.perf_counter() - started, 1)}


def run(name: str, ctx: Context) -> ScenarioResult:
    cycles = 1 if ctx.quick else 5
    with private_postgres(idle_session_timeout=f"{IDLE_TIMEOUT_S}s") as url:
        results = {
            "naive": asyncio.run(measure(url, cycles)),
            "recycle": asyncio.run(measure(url, cycles, pool_recycle=IDLE_TIMEOUT_S / 2)),
            "pre_ping": asyncio.run(measure(url, cycles, pool_pre_ping=True)),
        }
    total = cycles * BURST
    naive = results["naive"]["failed"]
    return ScenarioResult(
        title="No pool_recycle when the server drops idle connections (common mistake)",
        what_it_measures=(
            f"A private PostgreSQL with idle_session_timeout = {IDLE_TIMEOUT_S} s; {cycles} "
            f"cycles of {BURST} concurrent queries after {IDLE_TIMEOUT_S * 1.5:g} s idle "
            f"({total} queries per engine). Failed = the query raised (connection closed by "
            "the server). The service's own defaults (pool_recycle 3600 s, no pre-ping) "
            "behave like the naive engine against a server that drops idle sessions sooner: "
            "DB_POOL_RECYCLE must sit below the server's (or a proxy's) idle timeout."
        ),
        rows=[
            Row(
                "failed queries, ours = pool_recycle < timeout",
                naive,
                results["recycle"]["failed"],
                f"of {total}",
            ),
            Row(
                "failed queries, ours = pool_pre_ping",
                naive,
                results["pre_ping"]["failed"],
                f"of {total}",
            ),
        ],
        naive_label="create_async_engine(url)",
        ours_label="pool_recycle / pool_pre_ping",
        raw=results,
    )
