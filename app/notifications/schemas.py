from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator


class NotificationCreate(BaseModel):
    """An email to an address (`to`) or to a user (`user_id`): exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    to: EmailStr | None = None
    user_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=50_000)

    @model_validator(mode="after")
    def _one_recipient(self) -> Self:
        if (self.to is None) == (self.user_id is None):
            raise ValueError("give exactly one of `to` and `user_id`")
        # A header injection attempt: a newline would start a new header line.
        if "\r" in self.subject or "\n" in self.subject:
            raise ValueError("subject must be a single line")
        return self
