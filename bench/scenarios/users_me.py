"""GET /api/v1/users/me under wrk: the service against a raw-asyncpg reference app of ours
(bench/users_me.py, bench/README.md). Here the "naive" column is that reference: the least
work that gives the same answer, not a mistake."""

from __future__ import annotations

from statistics import mean
from typing import Any

from bench import users_me
from bench.harness import Context, Row, ScenarioResult


def run(name: str, ctx: Context) -> ScenarioResult:
    argv = ["--rounds", "1", "--duration", "3", "--connections", "64"] if ctx.quick else []
    runs = users_me.main(argv)
    rows = []
    for conns in sorted({r["conns"] for r in runs}):
        by_case: dict[str, list[dict[str, Any]]] = {
            case: [r for r in runs if r["conns"] == conns and r["case"] == case]
            for case in ("reference", "service")
        }
        ref, svc = by_case["reference"], by_case["service"]
        rows.append(
            Row(
                f"c={conns}: req/s",
                round(mean(r["rps"] for r in ref)),
                round(mean(r["rps"] for r in svc)),
                "req/s",
                "higher",
            )
        )
        rows.append(
            Row(
                f"c={conns}: p99",
                round(max(r["latency_p99_us"] for r in ref) / 1000, 1),
                round(max(r["latency_p99_us"] for r in svc) / 1000, 1),
                "ms",
            )
        )
    return ScenarioResult(
        title="GET /users/me: the service vs a raw-asyncpg reference app",
        what_it_measures=(
            "wrk on 127.0.0.1, server pinned to core 0 and wrk to core 1, fresh server "
            "process per run, interleaved rounds (see bench/README.md). The left column is "
            "the reference app (no ORM), not a naive app: the goal is ours >= 0.5 x its req/s."
        ),
        rows=rows,
        naive_label="reference (raw asyncpg)",
        ours_label="the service",
        raw={"runs": runs},
    )
