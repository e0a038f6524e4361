"""Mistake: a PATCH handler without `exclude_unset=True`. A seeded random sample of partial
updates (each sends 1 to 3 of 6 fields) against the two twins of bench/naive/profile_patch_app.py;
counts the stored fields the client did not send but that changed anyway (wiped)."""

from __future__ import annotations

import random

from fastapi.testclient import TestClient

from bench.harness import Context, Row, ScenarioResult
from bench.naive.profile_patch_app import FIELDS, PROFILES, app

SEED = 14


def run(name: str, ctx: Context) -> ScenarioResult:
    patches = 200 if ctx.quick else 2000
    rng = random.Random(SEED)
    wiped = {"naive": 0, "ours": 0}
    patches_with_loss = {"naive": 0, "ours": 0}
    with TestClient(app) as client:
        for i in range(patches):
            sent = rng.sample(FIELDS, rng.randint(1, 3))
            body = {field: f"{field}-{i}" for field in sent}
            for variant in ("naive", "ours"):
                before = {field: f"stored-{field}" for field in FIELDS}
                PROFILES[i] = dict(before)
                after = client.patch(f"/{variant}/profiles/{i}", json=body).json()
                lost = [f for f in FIELDS if f not in sent and after[f] != before[f]]
                wiped[variant] += len(lost)
                patches_with_loss[variant] += bool(lost)
            del PROFILES[i]
    return ScenarioResult(
        title="Missing exclude_unset on PATCH (common mistake)",
        what_it_measures=(
            f"{patches} partial updates (seed {SEED}), each sending 1 to 3 of {len(FIELDS)} "
            "optional fields to a stored profile whose every field is set; a field is wiped "
            "when the client did not send it and it changed. Same app, same model, the twins "
            "differ only in `model_dump()` vs `model_dump(exclude_unset=True)`."
        ),
        rows=[
            Row("fields wiped", wiped["naive"], wiped["ours"], "fields"),
            Row(
                "fields wiped per PATCH",
                round(wiped["naive"] / patches, 2),
                round(wiped["ours"] / patches, 2),
                "fields",
            ),
            Row(
                "PATCHes that lost data",
                patches_with_loss["naive"],
                patches_with_loss["ours"],
                f"of {patches}",
            ),
        ],
        naive_label="model_dump()",
        ours_label="model_dump(exclude_unset=True)",
        raw={"patches": patches, "wiped": wiped, "patches_with_loss": patches_with_loss},
    )
