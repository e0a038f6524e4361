"""bench/RESULTS.md shows the latest full-size run of each scenario: a later `--quick` run (small
sizes) never hides the figures of `make bench`, and a failure never hides a success."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.results_md import _load


def record(started: str, status: str = "ok", *, quick: bool) -> dict[str, Any]:
    return {"kind": "scenario", "scenario": "imports", "started": started, "status": status,
            "quick": quick}  # fmt: skip


def shown(tmp_path: Path, *records: dict[str, Any]) -> str:
    for number, one in enumerate(records):
        (tmp_path / f"{number:02d}.jsonl").write_text(json.dumps(one) + "\n")
    _, latest = _load(tmp_path)
    started: str = latest["imports"]["started"]
    return started


def test_a_later_quick_run_does_not_replace_a_full_one(tmp_path: Path) -> None:
    assert shown(tmp_path, record("full", quick=False), record("quick", quick=True)) == "full"


def test_a_later_full_run_replaces_a_quick_one(tmp_path: Path) -> None:
    assert shown(tmp_path, record("quick", quick=True), record("full", quick=False)) == "full"


def test_a_quick_run_replaces_a_failed_full_one_and_a_failure_replaces_nothing_ok(
    tmp_path: Path,
) -> None:
    assert shown(tmp_path, record("a", "failed", quick=False), record("b", quick=True)) == "b"
    assert shown(tmp_path, record("c", quick=True), record("d", "failed", quick=False)) == "c"
