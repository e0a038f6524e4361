"""Tables for the terminal, and a summary of what the servers wrote to their logs."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from statistics import mean
from typing import Any

CASES = ("service", "reference")

# The goals from the project brief ("Performance from the first day").
MIN_RATIO = 0.5
MAX_TAIL_FACTOR = 10.0


def _ms(us: float) -> str:
    return f"{us / 1000:.1f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [list(header), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _socket_errors(run: dict[str, Any]) -> int:
    return int(
        run["socket_connect"] + run["socket_read"] + run["socket_write"] + run["socket_timeout"]
    )


def _five_xx(run: dict[str, Any]) -> int:
    return int(run["status_500"] + run["status_503"] + run["status_5xx_other"])


def rounds_table(runs: list[dict[str, Any]]) -> str:
    """One row per (conns, case): req/s per round and mean, latencies, errors."""
    rounds = sorted({run["round"] for run in runs})
    header = [
        "case",
        "conns",
        *[f"R{r} req/s" for r in rounds],
        "mean req/s",
        "p50 ms (per round)",
        "p99 ms (per round)",
        "p99/p50 worst",
        "5xx",
        "of which 503",
        "4xx",
        "socket c/r/w/t",
        "cpu srv/wrk %",
        "load 1m max",
        "new PG sessions",
    ]
    rows = []
    for conns in sorted({run["conns"] for run in runs}):
        for case in CASES:
            group = sorted(
                (r for r in runs if r["conns"] == conns and r["case"] == case),
                key=lambda r: r["round"],
            )
            if not group:
                continue
            rps = {r["round"]: r["rps"] for r in group}
            rows.append(
                [
                    case,
                    str(conns),
                    *[f"{rps[r]:,.0f}" if r in rps else "-" for r in rounds],
                    f"{mean(rps.values()):,.0f}",
                    "/".join(_ms(r["latency_p50_us"]) for r in group),
                    "/".join(_ms(r["latency_p99_us"]) for r in group),
                    f"{max(_tail_factor(r) for r in group):.1f}",
                    str(sum(_five_xx(r) for r in group)),
                    str(sum(r["status_503"] for r in group)),
                    str(sum(r["status_4xx"] for r in group)),
                    "/".join(
                        str(sum(r[k] for r in group))
                        for k in ("socket_connect", "socket_read", "socket_write", "socket_timeout")
                    ),
                    "{:.0f}/{:.0f}".format(
                        mean(r["cpu_busy_percent"]["server_core"] for r in group),
                        mean(r["cpu_busy_percent"]["wrk_core"] for r in group),
                    ),
                    f"{max(r['loadavg_1m'] for r in group):.1f}",
                    str(sum(r["new_pg_sessions"] for r in group)),
                ]
            )
    return _table(header, rows)


def _tail_factor(run: dict[str, Any]) -> float:
    return run["latency_p99_us"] / run["latency_p50_us"] if run["latency_p50_us"] else 0.0


def ratio_lines(runs: list[dict[str, Any]]) -> list[str]:
    """service/reference req/s per connection count, per round and on the means, with the
    goals checked (ratio >= 0.5; the service's p99 <= 10x p50 in every round)."""
    lines = []
    for conns in sorted({run["conns"] for run in runs}):
        by_case = {
            case: {r["round"]: r for r in runs if r["conns"] == conns and r["case"] == case}
            for case in CASES
        }
        service, reference = by_case["service"], by_case["reference"]
        if not service or not reference:
            continue
        per_round = [
            service[r]["rps"] / reference[r]["rps"]
            for r in sorted(service)
            if r in reference and reference[r]["rps"]
        ]
        ratio = mean(r["rps"] for r in service.values()) / mean(
            r["rps"] for r in reference.values()
        )
        tail = max(_tail_factor(r) for r in service.values())
        lines.append(
            f"c={conns}: service/reference = {ratio:.2f} "
            f"(per round {'/'.join(f'{x:.2f}' for x in per_round)}) "
            f"[goal >= {MIN_RATIO}: {'ok' if ratio >= MIN_RATIO else 'MISSED'}]; "
            f"service p99/p50 worst {tail:.1f} "
            f"[goal <= {MAX_TAIL_FACTOR:.0f}: {'ok' if tail <= MAX_TAIL_FACTOR else 'MISSED'}]"
        )
    return lines


def overload_table(runs: list[dict[str, Any]]) -> str:
    header = [
        "case",
        "conns",
        "secs",
        "req/s",
        "2xx/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "500",
        "503",
        "other 5xx",
        "4xx",
        "timeouts",
        "other socket",
        "cpu srv/wrk %",
        "load 1m",
    ]
    rows = []
    for run in runs:
        rows.append(
            [
                run["case"],
                str(run["conns"]),
                str(run["duration_s"]),
                f"{run['rps']:,.0f}",
                f"{run['ok_rps']:,.0f}",
                _ms(run["latency_p50_us"]),
                _ms(run["latency_p99_us"]),
                _ms(run["latency_max_us"]),
                str(run["status_500"]),
                str(run["status_503"]),
                str(run["status_5xx_other"]),
                str(run["status_4xx"]),
                str(run["socket_timeout"]),
                str(run["socket_connect"] + run["socket_read"] + run["socket_write"]),
                "{:.0f}/{:.0f}".format(
                    run["cpu_busy_percent"]["server_core"], run["cpu_busy_percent"]["wrk_core"]
                ),
                f"{run['loadavg_1m']:.1f}",
            ]
        )
    return _table(header, rows)


def overload_lines(runs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for run in runs:
        if run["case"] != "service":
            continue
        failed = run["status_500"] + run["socket_timeout"]
        lines.append(
            f"overload c={run['conns']} {run['duration_s']}s: service 500s={run['status_500']} "
            f"timeouts={run['socket_timeout']} 503s={run['status_503']} "
            f"[goal: no 500, no timeout: {'ok' if failed == 0 else 'MISSED'}]"
        )
    return lines


def summarise_log(text: str) -> Counter[str]:
    """Count warning-or-worse log records by level, event and exception type.

    The service logs JSON lines in production; anything else (a raw traceback, uvicorn's own
    messages) is counted by its first words so nothing is silently dropped.
    """
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("=== start"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if any(word in line for word in ("Error", "Traceback", "ERROR", "WARNING")):
                counts[f"raw: {line[:120]}"] += 1
            continue
        if not isinstance(record, dict):
            continue
        level = str(record.get("level", "?"))
        if level in {"debug", "info"}:
            continue
        key = f"{level}: {record.get('event', '?')}"
        exception = record.get("exception")
        if isinstance(exception, str) and exception.strip():
            key += f" [{exception.strip().splitlines()[-1][:160]}]"
        counts[key] += 1
    return counts
