"""CSV import of `email,name,age,balance` users through `POST /api/v1/imports/users`, measured
from the job's start to its end, on SQLite and PostgreSQL, against the naive version of the
seed (`pandas.read_csv`, row-by-row validation, one executemany on SQLite). Reuses
bench/imports.py (servers by pid, RSS sampling, a database created and dropped per run)."""

from __future__ import annotations

import asyncio
import site
import time
from typing import Any

import anyio

from bench import imports
from bench.harness import Context, Row, ScenarioResult


async def run_async(ctx: Context, rows: int) -> dict[str, Any]:
    work = ctx.work_dir / "imports"
    work.mkdir()
    csv = work / "users.csv"
    size = await anyio.to_thread.run_sync(imports.write_csv, csv, rows)
    results: dict[str, Any] = {"rows": rows, "csv_MiB": round(size / 2**20, 1)}
    results["naive"] = await imports.run_naive(csv, work, site.getsitepackages()[0])
    results["sqlite"] = await imports.run_service(
        f"sqlite+aiosqlite:///{work / 'service.db'}", csv, rows, work
    )
    url = await imports.create_pg_database(ctx.admin_url)
    try:
        results["postgresql"] = await imports.run_service(url, csv, rows, work)
    finally:
        await imports.drop_pg_database(ctx.admin_url, url)
    return results


def cpu_per_row(rows: int = 5000) -> dict[str, float]:
    """CPU microseconds per row of the import's parsing stages, in this process: where the
    time of a row goes before the database sees it."""
    from email_validator import validate_email

    from app.imports.csv_rows import UsersCsvReader
    from app.imports.schemas import ImportRow

    lines = "".join(f"user{i:07d}@example.com,User {i}\r\n" for i in range(rows))
    data = ("email,name\r\n" + lines).encode()
    started = time.process_time()
    parsed = sum(len(batch.rows) for batch in UsersCsvReader([data]).batches())
    reader = time.process_time() - started
    started = time.process_time()
    for i in range(rows):
        ImportRow.model_validate({"email": f"user{i:07d}@example.com", "name": "x"})
    model = time.process_time() - started
    started = time.process_time()
    for i in range(rows):
        validate_email(f"user{i:07d}@example.com", check_deliverability=False)
    email = time.process_time() - started
    assert parsed == rows
    return {
        "reader_us": round(reader / rows * 1e6, 1),
        "import_row_model_us": round(model / rows * 1e6, 1),
        "email_validator_us": round(email / rows * 1e6, 1),
    }


def run(name: str, ctx: Context) -> ScenarioResult:
    rows = 50_000 if ctx.quick else 1_000_000
    r = asyncio.run(run_async(ctx, rows))
    r["cpu_per_row"] = cpu = cpu_per_row()
    naive = r["naive"]
    table = [
        Row("rows/s, ours on SQLite", naive["rows_per_s"], r["sqlite"]["rows_per_s"],
            "rows/s", "higher"),
        Row("rows/s, ours on PostgreSQL", naive["rows_per_s"], r["postgresql"]["rows_per_s"],
            "rows/s", "higher"),
        Row("peak RSS growth, ours on SQLite", naive["rss_growth_MiB"],
            r["sqlite"]["rss_growth_MiB"], "MiB"),
        Row("peak RSS growth, ours on PostgreSQL", naive["rss_growth_MiB"],
            r["postgresql"]["rss_growth_MiB"], "MiB"),
    ]  # fmt: skip
    return ScenarioResult(
        title="CSV import of users: rows per second",
        what_it_measures=(
            f"{rows:,} rows ({r['csv_MiB']} MiB) of `email,name,age,balance`. Ours: uploaded "
            "to `POST /api/v1/imports/users`, rows/s over the job's started_at -> finished_at; "
            "naive: the seed's `pandas.read_csv` then Pydantic per row and one `executemany` "
            "into SQLite, in a process of its own (it writes no ledger rows: less work). "
            "Goal on PostgreSQL: >= 100,000 rows/s for 1M rows."
        ),
        rows=table,
        naive_label="pandas.read_csv + executemany (SQLite)",
        ours_label="the service's import job",
        notes=[
            f"upload + job wall time, PostgreSQL: {r['postgresql']['upload_and_job_seconds']} s",
            f"CPU per row before the database: reader (csv + ImportRow) {cpu['reader_us']} us, "
            f"of which ImportRow {cpu['import_row_model_us']} us, of which email_validator "
            f"{cpu['email_validator_us']} us: 100,000 rows/s leaves 10 us per row in all.",
        ],
        raw=r,
    )
