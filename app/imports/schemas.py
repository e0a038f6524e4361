"""Imports: what a CSV row must be, and what an import reports."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.users.schemas import Password, UserCreate
from app.wallet.schemas import Amount

OnError = Literal["abort", "skip"]

# The columns a users CSV may have; the first two are required.
REQUIRED_COLUMNS = ("email", "name")
OPTIONAL_COLUMNS = ("age", "password", "balance")


class ImportRow(UserCreate):
    """One CSV row: sign-up's own model (same email, name, age and password rules), except that
    the password may be absent (the user cannot sign in until a password is set) and an
    opening balance may be given."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    password: Password | None = None  # type: ignore[assignment]
    balance: Amount | None = None


class RowError(BaseModel):
    line: int = Field(description="1-based line of the file; the header is line 1")
    column: str | None = Field(description="the column at fault, when there is one")
    message: str


class ImportResult(BaseModel):
    imported: int
    rejected: int = Field(description="rows refused")
    errors: list[RowError] = Field(description="the first 100 errors")
