"""Two testing mistakes, shown running: each tiny suite of bench/naive/testmistakes/ in its own
pytest process, bounded by a timeout; the outcome of each test (passed, failed, error, or hung
until the timeout), its wall time and the first line of its error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import Any

from bench.database import plain_dsn
from bench.harness import ROOT, Context, Row, ScenarioResult

SUITE = ROOT / "bench" / "naive" / "testmistakes"
TIMEOUT_S = 60
_RESULT = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR)", re.M)


def pytest_file(name: str, env: dict[str, str]) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "pytest", "-c", str(SUITE / "pytest.ini"), str(SUITE / name),
        "-v", "-rA", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist",
        "-W", "ignore", "--tb=line",
    ]  # fmt: skip
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"outcome": f"hung (killed after {TIMEOUT_S} s)", "seconds": TIMEOUT_S}
    seconds = round(time.perf_counter() - started, 2)
    outcomes = {
        test.split("::", 1)[1]: result for test, result in _RESULT.findall(completed.stdout)
    }
    errors = [
        line.strip()
        for line in completed.stdout.splitlines()
        if re.search(r"Error|assert|coroutine", line) and not line.startswith(("FAILED", "ERROR"))
    ]
    outcome = ", ".join(f"{k}: {v}" for k, v in outcomes.items()) or completed.stdout[-200:]
    # Paths of this machine (the interpreter's, the checkout's) stay out of committed results.
    first_error = re.sub(r"(/[^\s'\"<>]+)+/", "", (errors or [""])[0])[:200]
    return {
        "outcomes": outcomes,
        "seconds": seconds,
        "first_error": first_error,
        "outcome": outcome,
    }


def run(name: str, ctx: Context) -> ScenarioResult:
    env = dict(os.environ) | {"PYTHONPATH": str(ROOT), "BENCH_TEST_DSN": plain_dsn(ctx.admin_url)}
    files = {
        "sync fixture, asyncio.run inside": "sync_fixture_loop.py",
        "async def fixture with plain @pytest.fixture": "sync_fixture_plain.py",
        "ours: pytest_asyncio.fixture": "async_fixture_ours.py",
        "global repository": "global_state_naive.py",
        "ours: repository from a yield dependency": "global_state_ours.py",
    }
    results = {label: pytest_file(path, env) for label, path in files.items()}
    ours_fixture = results["ours: pytest_asyncio.fixture"]
    rows = [
        Row(f"{label}: outcome", results[label]["outcome"], ours_fixture["outcome"])
        for label in list(files)[:2]
    ]
    rows += [
        Row(f"{label}: wall time", results[label]["seconds"], ours_fixture["seconds"], "s")
        for label in list(files)[:2]
    ]
    naive_global, ours_global = results["global repository"], results[list(files)[4]]
    rows.append(Row("global state: outcome alone / in parallel", naive_global["outcome"],
                    ours_global["outcome"]))  # fmt: skip
    notes = [
        f"{label}: {r.get('first_error') or r['outcome']}"
        for label, r in results.items()
        if r.get("first_error")
    ]
    return ScenarioResult(
        title="Sync fixtures with async tests; global state for dependencies (common mistakes)",
        what_it_measures=(
            "Each mini-suite runs in its own pytest process (pytest-asyncio strict mode), "
            f"killed after {TIMEOUT_S} s if it hangs. The global-state suite runs the same "
            "test alone and with a second test writing concurrently (two threads stand in for "
            "two requests or xdist workers sharing one database)."
        ),
        rows=rows,
        naive_label="the mistake",
        ours_label="ours",
        notes=notes,
        raw=results,
    )
