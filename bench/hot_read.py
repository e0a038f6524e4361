"""CPU per current-user read, in-process on PostgreSQL: the ways `get_current_user` could read.

    .venv/bin/python -m bench.hot_read [--clients 32] [--reads 3200] [--rounds 3]

No HTTP: `--clients` asyncio tasks (uvloop) share `--reads` primary-key reads of the users
table, and the process's CPU time (`time.process_time`) per read is printed for each way,
interleaved over `--rounds`:

- `asyncpg pool`: `asyncpg.create_pool(10, 10).fetchrow`, the floor (bench/reference_app.py's read);
- `HotRead`: `app.users.service.load_user_snapshot`, the service's read (the asyncpg driver on
  a connection from SQLAlchemy's pool, then a detached `User`);
- `Core`: the same SELECT through `engine.connect()` in autocommit, the path before `HotRead`;
- `Core in a transaction`: the same without autocommit (BEGIN ... COMMIT around it).

The engine is `app.core.db.create_engine` with the default pool settings (10 + 20). Everything
is on 127.0.0.1; the database is created, seeded with 100 users and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import uvloop
from sqlalchemy import bindparam, select

from app.core.db import READ_ONLY, create_engine
from app.core.settings import Settings
from app.users.models import User
from app.users.service import load_user_snapshot
from bench import database

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_hot_read"
USERS = 100
QUERY = (
    "SELECT id, email, hashed_password, name, age, is_active, is_superuser, balance_minor, "
    "created_at, updated_at FROM users WHERE id = $1"
)
USER_BY_ID = select(User.__table__).where(User.__table__.c.id == bindparam("user_id"))

Read = Callable[[int], Awaitable[Any]]


async def cpu_per_read(read: Read, user_ids: list[int], clients: int, reads: int) -> float:
    """Microseconds of this process's CPU per read, `clients` reading at once."""
    per_client = reads // clients

    async def client(number: int) -> None:
        for i in range(per_client):
            await read(user_ids[(number * per_client + i) % len(user_ids)])

    started = time.process_time()
    await asyncio.gather(*(client(n) for n in range(clients)))
    return (time.process_time() - started) / (per_client * clients) * 1e6


async def run(args: argparse.Namespace) -> None:
    await database.recreate(args.database_url)
    try:
        await asyncio.to_thread(database.migrate, args.database_url)
        user_ids = await database.seed_users(args.database_url, USERS)
        engine = create_engine(Settings(database_url=args.database_url, secret_key="b" * 48))
        pool = await asyncpg.create_pool(
            database.plain_dsn(args.database_url), min_size=10, max_size=10
        )
        try:

            async def asyncpg_pool(user_id: int) -> Any:
                return await pool.fetchrow(QUERY, user_id)

            async def hot_read(user_id: int) -> Any:
                return await load_user_snapshot(engine, user_id)

            async def core(user_id: int) -> Any:
                async with engine.connect() as conn:
                    await conn.execution_options(**READ_ONLY)
                    return (await conn.execute(USER_BY_ID, {"user_id": user_id})).first()

            async def core_in_a_transaction(user_id: int) -> Any:
                async with engine.connect() as conn:
                    return (await conn.execute(USER_BY_ID, {"user_id": user_id})).first()

            ways: dict[str, Read] = {
                "asyncpg pool": asyncpg_pool,
                "HotRead": hot_read,
                "Core": core,
                "Core in a transaction": core_in_a_transaction,
            }
            results: dict[str, list[float]] = {name: [] for name in ways}
            for read in ways.values():  # warm-up: connections opened, statements prepared
                await cpu_per_read(read, user_ids, args.clients, args.clients * 10)
            for _ in range(args.rounds):
                for name, read in ways.items():
                    results[name].append(
                        await cpu_per_read(read, user_ids, args.clients, args.reads)
                    )
        finally:
            await pool.close()
            await engine.dispose()
    finally:
        await database.drop(args.database_url)

    floor = statistics.median(results["asyncpg pool"])
    print(f"{'read':<24} {'µs CPU per read (median)':>26}  {'x asyncpg pool':>14}  rounds")
    for name, values in results.items():
        median = statistics.median(values)
        rounds = " / ".join(f"{value:.0f}" for value in values)
        print(f"{name:<24} {median:>26.0f}  {median / floor:>14.2f}  {rounds}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hot_read", description=__doc__)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--reads", type=int, default=3200, help="reads per way per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()
    if args.clients < 1 or args.reads < args.clients or args.rounds < 1:
        parser.error("need --clients >= 1, --reads >= --clients and --rounds >= 1")
    uvloop.run(run(args))


if __name__ == "__main__":
    main()
