"""Claim 3, "API response validation caught 15 % of frontend bugs", as a mutation experiment.

Each bug of bench/naive/mutation_catalogue.py is injected, one at a time, into the same backend
function behind two endpoints, one with `response_model` and one without. Each response is
compared with that endpoint's answer when there is no bug:
- stopped: the server answers 500 (FastAPI's ResponseValidationError), the client gets no data;
- filtered: 200 and the same JSON as without the bug (extra field dropped, "42" coerced to 42);
- reached the client: 200 and different JSON: the bug is now the frontend's problem.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from fastapi.testclient import TestClient

from bench.harness import Context, Row, ScenarioResult
from bench.naive.accounts_app import app
from bench.naive.mutation_catalogue import BUGS

OUTCOMES = ("reached the client", "filtered", "stopped with an error")

WHAT = (
    "A fixed catalogue of 40 backend bugs (renamed, missing, wrong-typed or null fields, leaked "
    "secrets, wrong enum values, date and decimal formats, wrong values of the right type, a "
    "wrong shape), each injected alone into one endpoint with `response_model` and its twin "
    "without. It measures **which kinds of backend contract bug a response model keeps from "
    "the client** (stopped with a 500, or filtered to the correct payload). It cannot say what "
    "share of a real project's frontend bugs that is: that depends on how often each kind "
    "occurs, which no catalogue knows; nor does it count bugs that a typed client would catch "
    "on its own side."
)


def classify(client: TestClient, prefix: str, bug: str, baseline: Any) -> str:
    response = client.get(f"/{prefix}/{bug}")
    if response.status_code >= 500:
        return OUTCOMES[2]
    # Compared as JSON text: in Python 42.0 == 42 and 1 == True, for a client they differ.
    if json.dumps(response.json(), sort_keys=True) == json.dumps(baseline, sort_keys=True):
        return OUTCOMES[1]
    return OUTCOMES[0]


def run(name: str, ctx: Context) -> ScenarioResult:
    per_bug: list[dict[str, str]] = []
    counts: dict[str, Counter[str]] = {"naive": Counter(), "ours": Counter()}
    with TestClient(app, raise_server_exceptions=False) as client:
        baselines = {p: client.get(f"/{p}/none").json() for p in ("naive", "ours")}
        for bug_id, category, description, _ in BUGS:
            row = {"bug": bug_id, "category": category, "description": description}
            for prefix in ("naive", "ours"):
                outcome = classify(client, prefix, bug_id, baselines[prefix])
                counts[prefix][outcome] += 1
                row[prefix] = outcome
            per_bug.append(row)
    total = len(BUGS)
    rows = [
        Row(outcome, counts["naive"][outcome], counts["ours"][outcome], "bugs of 40",
            "lower" if outcome == OUTCOMES[0] else "higher")
        for outcome in OUTCOMES
    ]  # fmt: skip
    caught = {p: total - counts[p][OUTCOMES[0]] for p in counts}
    rows.append(
        Row("share caught (filtered + stopped)", round(100 * caught["naive"] / total, 1),
            round(100 * caught["ours"] / total, 1), "%", "higher")
    )  # fmt: skip
    by_category: dict[str, Counter[str]] = {}
    for item in per_bug:
        by_category.setdefault(item["category"], Counter())[item["ours"]] += 1
    notes = [
        f"{category}: with response_model " + ", ".join(f"{n} {o}" for o, n in c.items())
        for category, c in by_category.items()
    ]
    notes.append(
        "reached the client with response_model: "
        + ", ".join(item["bug"] for item in per_bug if item["ours"] == OUTCOMES[0])
    )
    return ScenarioResult(
        title="Response validation: a mutation experiment (claim 3)",
        what_it_measures=WHAT,
        rows=rows,
        naive_label="no response_model",
        ours_label="response_model=AccountOut",
        notes=notes,
        raw={"bugs": per_bug, "total": total},
    )
