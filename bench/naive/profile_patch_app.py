"""Two twins of a PATCH endpoint over an in-memory profile store, differing only in how the
partial update is dumped: `model_dump()` (the tutorial mistake: every field the client did not
send comes back as its default, None, and overwrites the stored value) against
`model_dump(exclude_unset=True)` (ours: only what the client sent)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

FIELDS = ("name", "nickname", "bio", "city", "phone", "website")


class ProfileUpdate(BaseModel):
    name: str | None = None
    nickname: str | None = None
    bio: str | None = None
    city: str | None = None
    phone: str | None = None
    website: str | None = None


PROFILES: dict[int, dict[str, Any]] = {}
app = FastAPI()


@app.patch("/naive/profiles/{profile_id}")
async def patch_naive(profile_id: int, update: ProfileUpdate) -> dict[str, Any]:
    PROFILES[profile_id].update(update.model_dump())
    return PROFILES[profile_id]


@app.patch("/ours/profiles/{profile_id}")
async def patch_ours(profile_id: int, update: ProfileUpdate) -> dict[str, Any]:
    PROFILES[profile_id].update(update.model_dump(exclude_unset=True))
    return PROFILES[profile_id]
