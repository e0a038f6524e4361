"""The scenario harness: run scenarios, append their raw results to bench/results/*.jsonl and
rewrite bench/RESULTS.md from the latest result of every scenario.

A scenario is a function `run(ctx) -> ScenarioResult` registered in `bench.scenarios`. It
compares a naive version against ours and reports rows of (metric, naive, ours); the harness
adds the ratio, the machine, the commit and whether the machine was loaded while it ran.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.other_work import LOADED_CORES, OtherWork

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
PLOTS_DIR = RESULTS_DIR / "plots"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
MAIN_LIBRARIES = (
    "fastapi",
    "starlette",
    "pydantic",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "uvicorn",
    "httpx",
    "anyio",
)


@dataclass
class Row:
    """One compared figure. `better` says which direction wins ("lower" or "higher")."""

    metric: str
    naive: float | int | str | None
    ours: float | int | str | None
    unit: str = ""
    better: str = "lower"

    def ratio(self) -> float | None:
        numbers = isinstance(self.naive, int | float) and isinstance(self.ours, int | float)
        if numbers and self.ours:
            return round(float(self.naive) / float(self.ours), 2)  # type: ignore[arg-type]
        return None


@dataclass
class ScenarioResult:
    title: str
    what_it_measures: str
    rows: list[Row]
    naive_label: str = "naive"
    ours_label: str = "ours"
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)  # paths relative to bench/
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    quick: bool
    admin_url: str
    work_dir: Path
    stamp: str

    def plot_path(self, name: str) -> Path:
        """Quick runs draw beside the full-size plots, never over them."""
        PLOTS_DIR.mkdir(parents=True, exist_ok=True)
        return PLOTS_DIR / f"{name}{'-quick' if self.quick else ''}.png"


Scenario = Callable[[Context], ScenarioResult]


def _run(command: list[str]) -> str:
    try:
        completed = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return completed.stdout.strip()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return 0.0


def _postgres_version(admin_url: str) -> str:
    import asyncio

    import asyncpg  # type: ignore[import-untyped]

    from bench.database import plain_dsn

    async def version() -> str:
        connection = await asyncpg.connect(plain_dsn(admin_url), timeout=10)
        try:
            return str(await connection.fetchval("SHOW server_version"))
        finally:
            await connection.close()

    try:
        return asyncio.run(version())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"unreachable ({type(exc).__name__})"


def machine(admin_url: str) -> dict[str, Any]:
    libraries = {}
    for name in MAIN_LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = "-"
    return {
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "postgresql": _postgres_version(admin_url),
        "libraries": libraries,
        "kernel": platform.release(),
    }


def git_commit() -> str:
    return _run(["git", "rev-parse", "--short", "HEAD"]) or "unknown"


def git_dirty() -> bool:
    return bool(_run(["git", "status", "--porcelain", "--", "app", "bench", "migrations"]))


def run_scenarios(
    names: list[str], scenarios: dict[str, Scenario], ctx: Context, command: str
) -> int:
    """Run each scenario in turn; a failing one is recorded as failed and the rest go on.
    Returns the number of failures."""
    from bench import results_md

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    results_file = RESULTS_DIR / f"{ctx.stamp}.jsonl"
    header = {
        "kind": "meta",
        "started": ctx.stamp,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "dirty": git_dirty(),
        "command": command,
        "quick": ctx.quick,
        "machine": machine(ctx.admin_url),
    }
    with results_file.open("a") as out:
        out.write(json.dumps(header) + "\n")
    print(f"raw results: {results_file.relative_to(ROOT)}", flush=True)
    failures = 0
    for name in names:
        load_before = os.getloadavg()[0]
        other_work = OtherWork.start()
        started = time.monotonic()
        print(f"\n== {name}{' (quick)' if ctx.quick else ''}", flush=True)
        record: dict[str, Any] = {"kind": "scenario", "scenario": name, **header}
        record["kind"] = "scenario"
        try:
            result = scenarios[name](ctx)
        except Exception as exc:  # a broken scenario must not hide the others' figures
            failures += 1
            record |= {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            print(f"   FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        else:
            record |= {
                "status": "ok",
                "title": result.title,
                "what_it_measures": result.what_it_measures,
                "naive_label": result.naive_label,
                "ours_label": result.ours_label,
                "rows": [{**row.__dict__, "ratio": row.ratio()} for row in result.rows],
                "notes": result.notes,
                "plots": result.plots,
                "raw": result.raw,
            }
            for row in result.rows:
                print(
                    f"   {row.metric}: naive {row.naive} / ours {row.ours} {row.unit}"
                    f"  ratio {row.ratio()}",
                    flush=True,
                )
        load_after = os.getloadavg()[0]
        other_cores = other_work.cores()
        record |= {
            "seconds": round(time.monotonic() - started, 1),
            "loadavg_1m": [round(load_before, 2), round(load_after, 2)],
            "other_work_cores": round(other_cores, 2),
            "loaded_machine": other_cores > LOADED_CORES,
        }
        record.pop("machine", None)
        with results_file.open("a") as out:
            out.write(json.dumps(record, default=str) + "\n")
        results_md.write(RESULTS_DIR, RESULTS_MD)
    print(f"\nRESULTS.md rewritten: {RESULTS_MD.relative_to(ROOT)}")
    return failures
