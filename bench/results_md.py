"""bench/RESULTS.md, rewritten from the raw JSONL after each scenario: the latest full-size
result of every scenario (quick runs where there is none), with the machine, date, commit and
command of the run that produced it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HEADER = """# Benchmark results

Written by `python -m bench` from the raw results in `results/*.jsonl` (one file per run): for
every scenario, the latest full-size run of it (a `--quick` run only where no full-size run
succeeded). The ratio is naive / ours; for a figure where
higher is better (req/s, rows/s) a ratio below 1 means ours wins. **Figures marked "loaded
machine"** were taken while work the benchmark did not start (the machine's busy time minus
the benchmark's own processes and PostgreSQL, `bench/other_work.py`) took more than half a core
on average: their absolute values are not to be trusted and the ratios only roughly; a full
run on a quiet machine (`make bench`) replaces them. Older runs, recorded before that meter,
were flagged by the 1-minute load average, which a load benchmark raises by itself.
**"quick"** marks the small sizes of `python -m bench --quick`.

"""


def _rank(record: dict[str, Any]) -> tuple[bool, bool]:
    return record["status"] == "ok", not record.get("quick")


def _load(results_dir: Path) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    metas: dict[str, dict[str, Any]] = {}
    latest: dict[str, dict[str, Any]] = {}
    for path in sorted(results_dir.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("kind") == "meta" and "machine" in record:
                metas[record["started"]] = record
            elif record.get("kind") == "scenario":
                name = record["scenario"]
                previous = latest.get(name)
                # A later run replaces one of the same rank or lower: a full-size success
                # replaces anything, a quick success a quick run or a failure, a failure
                # only a failure. So `--quick` never hides the figures of `make bench`.
                if previous is None or _rank(record) >= _rank(previous):
                    latest[name] = record
    return metas, latest


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _machine_lines(meta: dict[str, Any]) -> list[str]:
    machine = meta["machine"]
    libraries = ", ".join(f"{k} {v}" for k, v in machine["libraries"].items())
    return [
        f"- machine: {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"{machine['cpu_model']}, Linux {machine['kernel']}",
        f"- Python {machine['python']}, PostgreSQL {machine['postgresql']}",
        f"- libraries: {libraries}",
    ]


def render(results_dir: Path) -> str:
    metas, latest = _load(results_dir)
    out = [HEADER]
    runs = sorted({record["started"] for record in latest.values()})
    out.append("## Runs shown here\n")
    for stamp in runs:
        meta = metas.get(stamp)
        if meta is None:
            continue
        shown = sorted(name for name, r in latest.items() if r["started"] == stamp)
        out.append(
            f"### {meta['date']} — commit `{meta['commit']}`"
            + (" (with uncommitted changes)" if meta.get("dirty") else "")
            + "\n"
        )
        out.append(f"- command: `{meta['command']}`")
        out.extend(_machine_lines(meta))
        out.append(f"- scenarios from this run: {', '.join(shown)}\n")
    for name in sorted(latest):
        record = latest[name]
        out.append(f"## {name}: {record.get('title', name)}\n")
        flags = []
        if record.get("quick"):
            flags.append("quick")
        if "other_work_cores" in record:
            other = record["other_work_cores"]
            flags.append(
                f"**loaded machine** (other work {other} cores)"
                if record.get("loaded_machine")
                else f"quiet machine (other work {other} cores)"
            )
        elif record.get("loaded_machine"):
            load = record.get("loadavg_1m", ["?", "?"])
            flags.append(f"**loaded machine** (load 1m {load[0]} -> {load[1]})")
        out.append(
            f"Run {record['date']}, commit `{record['commit']}`, {record.get('seconds', '?')} s"
            + (f"; {', '.join(flags)}" if flags else "")
            + ".\n"
        )
        if record["status"] != "ok":
            out.append(f"**Failed**: `{record.get('error', '?')}`\n")
            continue
        out.append(record["what_it_measures"] + "\n")
        naive, ours = record["naive_label"], record["ours_label"]
        out.append(f"| metric | naive: {naive} | ours: {ours} | ratio naive/ours |")
        out.append("|---|---:|---:|---:|")
        for row in record["rows"]:
            unit = f" ({row['unit']})" if row["unit"] else ""
            arrow = " ↓" if row["better"] == "lower" else " ↑"
            out.append(
                f"| {row['metric']}{unit}{arrow} | {_cell(row['naive'])} | {_cell(row['ours'])}"
                f" | {_cell(row['ratio'])} |"
            )
        out.append("")
        for note in record.get("notes", []):
            out.append(f"- {note}")
        if record.get("notes"):
            out.append("")
        for plot in record.get("plots", []):
            out.append(f"![{name}]({plot})\n")
    out.append("↓ lower is better, ↑ higher is better.\n")
    return "\n".join(out)


def write(results_dir: Path, target: Path) -> None:
    target.write_text(render(results_dir))
