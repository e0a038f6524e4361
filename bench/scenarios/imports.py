"""CSV import of `email,name` users through `POST /api/v1/imports/users`, measured
from the request to the job's end, on SQLite and PostgreSQL (COPY, app/imports/pg_copy.py), against
the naive version of the seed (`pandas.read_csv`, row-by-row validation, one executemany on
SQLite); then, apart on PostgreSQL, as many rows of `email,name,age,balance` (a ledger row for
every tenth) and a smaller file with a password column (an Argon2 hash a row). Reuses
bench/imports.py (servers by pid, RSS sampling, a database created and dropped per run)."""

from __future__ import annotations

import asyncio
import site
import time
from functools import partial
from typing import Any

import anyio

from bench import imports
from bench.harness import Context, Row, ScenarioResult


async def run_async(ctx: Context, rows: int, password_rows: int) -> dict[str, Any]:
    work = ctx.work_dir / "imports"
    work.mkdir()
    csv = work / "users.csv"
    size = await anyio.to_thread.run_sync(partial(imports.write_csv, csv, rows, ledger=False))
    ledger_csv = work / "users-with-balances.csv"
    await anyio.to_thread.run_sync(imports.write_csv, ledger_csv, rows, 30_000_000)
    results: dict[str, Any] = {"rows": rows, "csv_MiB": round(size / 2**20, 1)}
    results["naive"] = await imports.run_naive(csv, work, site.getsitepackages()[0])
    results["sqlite"] = await imports.run_service(
        f"sqlite+aiosqlite:///{work / 'service.db'}", csv, rows, work
    )
    url = await imports.create_pg_database(ctx.admin_url)
    try:
        results["postgresql"] = await imports.run_service(
            url, csv, rows, work, password_rows=password_rows, ledger_csv=ledger_csv
        )
    finally:
        await imports.drop_pg_database(ctx.admin_url, url)
    return results


def cpu_per_row(rows: int = 5000) -> dict[str, float]:
    """CPU microseconds per row of the import's parsing stages, in this process: where the
    time of a row goes before the database sees it."""
    from email_validator import validate_email

    from app.imports.csv_rows import UsersCsvReader
    from app.imports.fast_rows import plain_email
    from app.imports.schemas import ImportRow

    lines = "".join(f"user{i:07d}@example.com,User {i},{i % 100}\r\n" for i in range(rows))
    data = ("email,name,age\r\n" + lines).encode()
    emails = [f"user{i:07d}@example.com" for i in range(rows)]

    def per_row(work: Any) -> float:
        started = time.process_time()
        work()
        return round((time.process_time() - started) / rows * 1e6, 2)

    parsed: list[int] = []
    reader = per_row(
        lambda: parsed.extend(len(batch.rows) for batch in UsersCsvReader([data]).batches())
    )
    assert sum(parsed) == rows
    return {
        "reader_us": reader,
        "plain_email_us": per_row(lambda: [plain_email(email) for email in emails]),
        "import_row_model_us": per_row(
            lambda: [ImportRow.model_validate({"email": e, "name": "x"}) for e in emails]
        ),
        "email_validator_us": per_row(
            lambda: [validate_email(e, check_deliverability=False) for e in emails]
        ),
    }


def run(name: str, ctx: Context) -> ScenarioResult:
    rows, password_rows = (50_000, 200) if ctx.quick else (1_000_000, 1000)
    r = asyncio.run(run_async(ctx, rows, password_rows))
    r["cpu_per_row"] = cpu = cpu_per_row()
    naive = r["naive"]
    passwords = r["postgresql"]["with_passwords"]
    ledger = r["postgresql"]["with_ledger"]
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
            f"{rows:,} rows ({r['csv_MiB']} MiB) of `email,name`. Ours: uploaded to "
            "`POST /api/v1/imports/users`, rows/s from the request to the job's end (upload, "
            "job queue, parse, insert, commit; PostgreSQL through COPY straight into `users`, "
            "or into a staging table once an email is taken); naive: the seed's "
            "`pandas.read_csv` then Pydantic per row and one `executemany` into SQLite, in a "
            "process of its own (no upload, no ledger rows: less work). Goal on PostgreSQL: "
            ">= 100,000 rows/s for 1M rows."
        ),
        rows=table,
        naive_label="pandas.read_csv + executemany (SQLite)",
        ours_label="the service's import job",
        notes=[
            f"the job alone (started -> finished): SQLite {r['sqlite']['job_rows_per_s']:,} "
            f"rows/s, PostgreSQL {r['postgresql']['job_rows_per_s']:,} rows/s",
            f"{rows:,} rows of `email,name,age,balance` (a ledger row for every tenth), apart, "
            f"PostgreSQL: {ledger['rows_per_s']:,} rows/s ({ledger['seconds']} s; the job "
            f"alone {ledger['job_rows_per_s']:,} rows/s)",
            f"with a password column, apart ({password_rows:,} rows, an Argon2 hash each at "
            f"time cost 2, 19 MiB), PostgreSQL: {passwords['rows_per_s']:,} rows/s",
            f"CPU per row before the database: reader (csv + checks) {cpu['reader_us']} us; "
            f"its email check {cpu['plain_email_us']} us, where `ImportRow` takes "
            f"{cpu['import_row_model_us']} us (email_validator {cpu['email_validator_us']} us) "
            "and stays for the rows the fast path does not settle: 100,000 rows/s leaves 10 us "
            "per row in all.",
        ],
        raw=r,
    )
