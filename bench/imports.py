"""Import benchmark: one million users from a CSV through `POST /api/v1/imports/users` (the
service: streamed to storage, parsed row by row in a job, batched inserts), on SQLite and on
PostgreSQL, versus the naive version of the seed, `pandas.read_csv(file)` then row by row.

For the service: rows per second (the job's own started_at -> finished_at) and the server
process's resident memory (VmRSS sampled every 20 ms; baseline after a small warm-up import,
peak during the big one). For the naive version: the same rows validated with the same Pydantic
model and inserted with `executemany` in one SQLite transaction, in a process of its own; its
rows per second and peak RSS (`ru_maxrss`). pandas is not a dependency of the project: the naive
run needs `--pandas-site-packages` pointing at a separate venv that has it.

    .venv/bin/python -m bench.imports [--rows 1000000] [--postgres-url postgresql+asyncpg://...]
        [--pandas-site-packages PANDAS_VENV/lib/python3.11/site-packages]

Servers listen on 127.0.0.1 and are stopped by pid; the PostgreSQL database is created and
dropped by the run. Each import is bounded (300 s: the naive one can take over 120 s for a
million rows on a busy machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx

from bench.uploads import ROOT, SECRET_KEY, free_port, rss, sample_peak, start, stop

PASSWORD = "correct horse battery"
IMPORT_SECONDS = 300


def write_csv(
    path: Path, rows: int, first: int = 0, *, passwords: bool = False, ledger: bool = True
) -> int:
    """`email,name,age,balance` rows, a balance on every tenth (a ledger row each); without
    `ledger`, plain `email,name` rows (the import's target: 100,000 rows/s on PostgreSQL); with
    `passwords`, a password column too (each row then costs an Argon2 hash)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        header = "email,name,age,balance" if ledger else "email,name"
        out.write(header + (",password" if passwords else "") + "\r\n")
        for i in range(first, first + rows):
            balance = f"{i % 1000 + 1}.{i % 100:02d}" if i % 10 == 0 else ""
            values = f",{i % 100},{balance}" if ledger else ""
            password = f",password-{i}" if passwords else ""
            out.write(f"user{i:07d}@example.com,User {i}{values}{password}\r\n")
    return path.stat().st_size


async def file_body(path: Path, head: bytes, tail: bytes) -> AsyncIterator[bytes]:
    yield head
    async with await anyio.open_file(path, "rb") as source:
        while chunk := await source.read(256 * 1024):
            yield chunk
    yield tail


async def import_file(
    client: httpx.AsyncClient, headers: dict[str, str], path: Path
) -> dict[str, Any]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="users.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = (await anyio.Path(path).stat()).st_size
    response = await client.post(
        "/api/v1/imports/users",
        content=file_body(path, head, tail),
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
            **headers,
        },
    )
    response.raise_for_status()
    job: dict[str, Any] = response.json()
    deadline = time.monotonic() + IMPORT_SECONDS
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        if time.monotonic() > deadline:
            raise SystemExit(f"import not finished in {IMPORT_SECONDS} s: {job}")
        await asyncio.sleep(0.25)
        job = (await client.get(f"/api/v1/jobs/{job['id']}", headers=headers)).json()
    return job


def job_seconds(job: dict[str, Any], since: datetime | None = None) -> float:
    """From `since` (the request) or the job's start, to the job's end, by the server's clock
    (same machine): no polling interval in the figure."""
    start = since or datetime.fromisoformat(job["started_at"])
    return (datetime.fromisoformat(job["finished_at"]) - start).total_seconds()


async def timed_import(
    client: httpx.AsyncClient, headers: dict[str, str], csv: Path, rows: int
) -> dict[str, Any]:
    requested = datetime.now(UTC)
    job = await import_file(client, headers, csv)
    if job["status"] != "succeeded" or job["result"]["imported"] != rows:
        raise SystemExit(f"import did not succeed: {job}")
    end_to_end, in_job = job_seconds(job, requested), job_seconds(job)
    return {
        "rows": rows,
        "seconds": round(end_to_end, 2),
        "rows_per_s": round(rows / end_to_end),
        "job_seconds": round(in_job, 2),
        "job_rows_per_s": round(rows / in_job),
    }


async def run_service(
    database_url: str,
    csv: Path,
    rows: int,
    work: Path,
    *,
    password_rows: int = 0,
    ledger_csv: Path | None = None,
) -> dict[str, Any]:
    """The big import, timed from the request to the job's end (`rows_per_s`) and over the job
    alone (`job_rows_per_s`); with `ledger_csv` (as many rows, other emails, with age and
    balance), then that file, timed apart (`with_ledger`); with `password_rows`, then a file of
    that many rows with a password column, timed apart (an Argon2 hash a row)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))} | {
        "DATABASE_URL": database_url,
        "STORAGE_DIR": str(work / f"files-{port}"),
        "VAR_DIR": str(work / "var"),
        "SECRET_KEY": SECRET_KEY,
        "ENVIRONMENT": "production",
        # Production refuses the sandbox gateway; no scenario charges a card.
        "PAYMENT_GATEWAY": "http",
        "PAYMENT_GATEWAY_URL": "https://gateway.invalid/v1",
        "ARGON2_TIME_COST": "2",
        "ARGON2_MEMORY_KIB": "19456",
        "LOG_LEVEL": "WARNING",
        "FIRST_SUPERUSER_EMAIL": email,
        "FIRST_SUPERUSER_PASSWORD": PASSWORD,
    }
    argv = [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = await start(argv, env, f"{base}/health/live")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            token = await client.post(
                "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
            )
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            warm = work / "warm.csv"
            await anyio.to_thread.run_sync(write_csv, warm, 2000, 10_000_000)
            await import_file(client, headers, warm)
            baseline = rss(process.pid)
            stopped = asyncio.Event()
            sampler = asyncio.create_task(sample_peak(process.pid, stopped))
            result = await timed_import(client, headers, csv, rows)
            stopped.set()
            peak = await sampler
            if ledger_csv is not None:
                result["with_ledger"] = await timed_import(client, headers, ledger_csv, rows)
            if password_rows:
                with_passwords = work / "passwords.csv"
                await anyio.to_thread.run_sync(
                    partial(write_csv, with_passwords, password_rows, 20_000_000, passwords=True)
                )
                result["with_passwords"] = await timed_import(
                    client, headers, with_passwords, password_rows
                )
        return result | {
            "rss_baseline_MiB": round(baseline / 2**20, 1),
            "rss_peak_MiB": round(peak / 2**20, 1),
            "rss_growth_MiB": round((peak - baseline) / 2**20, 1),
        }
    finally:
        await stop(process)


async def create_pg_database(admin_url: str) -> str:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"bench_imports_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(admin_url: str, url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = make_url(url).database
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


# --- the naive version, run in a process of its own (`--naive`) ------------------------------


def naive_import(csv: Path, database: Path) -> dict[str, Any]:
    import sqlite3

    import pandas  # type: ignore[import-untyped,unused-ignore]

    from app.imports.schemas import ImportRow
    from app.migrate import upgrade
    from app.wallet.schemas import to_minor

    upgrade(f"sqlite+aiosqlite:///{database}")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    with csv.open("rb") as upload:  # the seed's `pandas.read_csv(file.file)`
        frame = pandas.read_csv(upload, dtype=str, keep_default_na=False)
    users = []
    for record in frame.to_dict("records"):
        values = {k: v for k, v in record.items() if v != "" or k in ("email", "name")}
        row = ImportRow.model_validate(values)
        users.append(
            (
                str(row.email),
                "!",
                row.name,
                row.age,
                to_minor(row.balance) if row.balance else 0,
            )
        )
    connection = sqlite3.connect(database)
    with connection:
        connection.executemany(
            "INSERT INTO users (email, hashed_password, name, age, balance_minor, is_active,"
            " is_superuser, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 1, 0, datetime('now'), datetime('now'))",
            users,
        )
    connection.close()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "rows": len(users),
        "seconds": round(seconds, 1),
        "rows_per_s": round(len(users) / seconds),
        "rss_before_MiB": round(before / 2**20, 1),
        "rss_peak_MiB": round(peak / 2**20, 1),
        "rss_growth_MiB": round((peak - before) / 2**20, 1),
        "note": "no ledger rows, no password hashing: less work than the service does",
    }


async def run_naive(csv: Path, work: Path, site_packages: str) -> dict[str, Any]:
    env = dict(os.environ) | {"PYTHONPATH": f"{ROOT}:{site_packages}"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.imports", "--naive", str(csv), str(work / "naive.db"),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(), IMPORT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if process.returncode:
        raise SystemExit(f"naive import failed with {process.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def main(args: argparse.Namespace) -> None:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-imports-") as tmp:
        work = Path(tmp)
        csv = work / "users.csv"
        size = await anyio.to_thread.run_sync(write_csv, csv, args.rows)
        results["csv_MiB"] = round(size / 2**20, 1)
        results["service, SQLite"] = await run_service(
            f"sqlite+aiosqlite:///{work / 'service.db'}", csv, args.rows, work
        )
        if args.postgres_url:
            url = await create_pg_database(args.postgres_url)
            try:
                results["service, PostgreSQL"] = await run_service(url, csv, args.rows, work)
            finally:
                await drop_pg_database(args.postgres_url, url)
        if args.pandas_site_packages:
            results["naive pandas.read_csv, SQLite"] = await run_naive(
                csv, work, args.pandas_site_packages
            )
    print(json.dumps(results, indent=2))


def cli() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.imports", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres-url", help="an admin URL allowed to CREATE DATABASE")
    parser.add_argument("--pandas-site-packages", help="site-packages of a venv with pandas")
    parser.add_argument("--naive", nargs=2, metavar=("CSV", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive:
        print(json.dumps(naive_import(Path(args.naive[0]), Path(args.naive[1]))))
        return
    asyncio.run(main(args))


if __name__ == "__main__":
    cli()
