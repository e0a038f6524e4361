"""Two twins of one endpoint, differing only in the pattern under test: `/ours/{bug}` declares
`response_model=AccountOut`, `/naive/{bug}` returns the backend's dict as is (the tutorial way).
Both call the same backend function, with the bug of the catalogue named in the path injected."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, EmailStr

from bench.naive.mutation_catalogue import BUGS, correct_account

MUTATIONS = {bug_id: mutate for bug_id, _, _, mutate in BUGS}


class AccountStatus(enum.StrEnum):
    active = "active"
    suspended = "suspended"
    closed = "closed"


class AccountOut(BaseModel):
    id: int
    email: EmailStr
    name: str
    nickname: str | None = None
    balance: Decimal
    currency: Literal["EUR", "USD"]
    status: AccountStatus
    created_at: datetime
    tags: list[str]
    is_verified: bool


def backend(bug: str) -> dict[str, Any]:
    account = correct_account()
    if bug != "none":
        MUTATIONS[bug](account)
    return account


app = FastAPI()


@app.get("/ours/{bug}", response_model=AccountOut)
async def read_ours(bug: str) -> Any:
    return backend(bug)


@app.get("/naive/{bug}")
async def read_naive(bug: str) -> Any:
    return backend(bug)
