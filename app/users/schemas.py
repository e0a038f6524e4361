from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import (
    MISSING,
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)

from app.core.partial import PatchModel

Email = Annotated[EmailStr, AfterValidator(str.lower), Field(max_length=320)]
Password = Annotated[str, Field(min_length=8, max_length=128)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Age = Annotated[int, Field(ge=0, le=150)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password
    name: Name
    age: Age | None = None


class UserRead(BaseModel):
    id: int
    email: str
    name: str
    age: int | None
    is_active: bool
    is_superuser: bool
    balance: str = Field(examples=["12.50"])
    currency: str = Field(examples=["USD"])
    created_at: datetime
    updated_at: datetime


class UserUpdate(PatchModel):
    """PATCH body. Absent: unchanged. `null`: clears `age`, is a 422 for the others."""

    email: Email | MISSING = MISSING
    name: Name | MISSING = MISSING
    age: Age | MISSING | None = MISSING
    password: Password | MISSING = MISSING
    # Required to change `password`, unless a superuser does it.
    current_password: Annotated[str, Field(max_length=128)] | MISSING = MISSING
    # Superusers only.
    is_active: bool | MISSING = MISSING
    is_superuser: bool | MISSING = MISSING
