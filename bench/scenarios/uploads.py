"""Claim 4, "memory reduced 60 % by streaming uploads": peak RSS of the server process while one
file is uploaded, naive `await file.read()` and `pandas.read_csv(file.file)` against the
service's streaming `POST /api/v1/files`, at several sizes. Reuses bench/uploads.py (server
start/stop by pid, RSS sampling every 20 ms)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench import plots, uploads
from bench.harness import Context, Row, ScenarioResult
from bench.uploads import free_port, start, stop

CSV_BLOCK = b"".join(f"user{i:07d}@example.com,User {i}\r\n".encode() for i in range(8192))


async def csv_body(head: bytes, size: int, tail: bytes) -> AsyncIterator[bytes]:
    """`size` bytes of an email,name CSV: a header line, then whole lines, padded to size."""
    yield head
    header = b"email,name\r\n"
    yield header
    sent = len(header)
    while sent + len(CSV_BLOCK) <= size:
        yield CSV_BLOCK
        sent += len(CSV_BLOCK)
    if size > sent:
        yield b"x" * (size - sent - 2) + b"\r\n" if size - sent >= 2 else b"\n"
    yield tail


async def run_naive(size: int, work: Path, path: str, csv: bool) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    storage = work / f"naive-{port}"
    storage.mkdir()
    argv = [sys.executable, "-m", "bench.naive.uploads_app", str(port), str(storage)]
    process = await start(argv, dict(os.environ), f"{base}/docs")
    original = uploads.body
    try:
        if csv:
            uploads.body = csv_body  # the same measure(), with a CSV payload
        return await uploads.measure(process.pid, f"{base}{path}", size, {})
    finally:
        uploads.body = original
        await stop(process)


async def run_async(ctx: Context) -> dict[int, dict[str, Any]]:
    sizes = [16, 64] if ctx.quick else [16, 256, 1024]
    results: dict[int, dict[str, Any]] = {}
    for mib in sizes:
        size = mib * 2**20
        work = ctx.work_dir / f"uploads-{mib}"
        work.mkdir()
        results[mib] = {
            "ours": await uploads.run_service(size, work),
            "read": await run_naive(size, work, "/upload", csv=False),
            "pandas": await run_naive(size, work, "/upload-csv", csv=True),
        }
    return results


def run(name: str, ctx: Context) -> ScenarioResult:
    results = asyncio.run(run_async(ctx))
    rows = []
    for mib, r in results.items():
        rows.append(
            Row(
                f"{mib} MiB: peak RSS growth, await file.read()",
                r["read"]["rss_growth_MiB"],
                r["ours"]["rss_growth_MiB"],
                "MiB",
            )
        )
        rows.append(
            Row(
                f"{mib} MiB: peak RSS growth, pd.read_csv(file.file)",
                r["pandas"]["rss_growth_MiB"],
                r["ours"]["rss_growth_MiB"],
                "MiB",
            )
        )
        rows.append(
            Row(
                f"{mib} MiB: peak RSS, await file.read()",
                r["read"]["rss_peak_MiB"],
                r["ours"]["rss_peak_MiB"],
                "MiB",
            )
        )
        rows.append(
            Row(
                f"{mib} MiB: throughput, await file.read()",
                r["read"]["MiB_per_s"],
                r["ours"]["MiB_per_s"],
                "MiB/s",
                "higher",
            )
        )
    plot = ctx.plot_path("uploads_rss")
    sizes = list(results)
    plots.lines(
        plot, "Server peak RSS growth during one upload", "upload size (MiB)",
        "peak RSS - baseline (MiB)",
        {label: (sizes, [results[s][key]["rss_growth_MiB"] for s in sizes])
         for key, label in (("read", "await file.read()"), ("pandas", "pd.read_csv(file.file)"),
                            ("ours", "ours: streamed to storage"))},
        logx=True,
    )  # fmt: skip
    return ScenarioResult(
        title="Streaming uploads: server memory (claim 4)",
        what_it_measures=(
            "One multipart upload per run to a fresh server process on 127.0.0.1; the server's "
            "VmRSS is sampled every 20 ms, baseline before, peak during. Naive: the seed's "
            "`await file.read()` (random bytes) and `pandas.read_csv(file.file)` (an email,name "
            "CSV of the same size); ours: the service's `POST /api/v1/files`, streamed to "
            "storage in chunks with a size cap (SQLite, one worker)."
        ),
        rows=rows,
        naive_label="await file.read() / pd.read_csv",
        ours_label="streamed (POST /api/v1/files)",
        plots=[str(plot.relative_to(plot.parents[2]))],
        raw={str(k): v for k, v in results.items()},
    )
