"""PATCH: apply a partial-update model to a row.

The update model declares each field with Pydantic's `MISSING` sentinel:

    name: str | MISSING = MISSING          # absent -> unchanged; null -> 422 (required column)
    age: int | None | MISSING = MISSING    # absent -> unchanged; null -> cleared

so "absent" and "null" are different things, a null for a required column is a 422 at the
door (not an IntegrityError and a 500 at commit), and unknown fields are refused by
`extra="forbid"`. `changes()` is what the client actually sent; `apply_patch()` writes it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from app.core.errors import InvalidInput, public_validation_errors


class PatchModel(BaseModel):
    """Base for PATCH bodies: unknown fields are refused, nothing has a default value."""

    model_config = ConfigDict(extra="forbid")


def changes(patch: BaseModel, *, exclude: Collection[str] = ()) -> dict[str, Any]:
    """The fields the client sent, with their (validated) values; MISSING ones are absent."""
    return {
        name: value
        for name, value in patch.model_dump(exclude_unset=True).items()
        if name not in exclude
    }


def apply_patch(
    target: object,
    patch: BaseModel,
    *,
    exclude: Collection[str] = (),
    validate_with: type[BaseModel] | None = None,
) -> dict[str, Any]:
    """Set every sent field on `target` and return what changed.

    `validate_with`, when given, re-validates the merged result as a whole (cross-field rules
    that no single field's validator can see); `setattr` alone would skip them.
    """
    sent = changes(patch, exclude=exclude)
    if validate_with is not None:
        current = {name: getattr(target, name) for name in validate_with.model_fields}
        try:
            validate_with.model_validate({**current, **sent})
        except ValidationError as exc:
            raise InvalidInput(
                "the update would leave the resource invalid",
                code="validation_error",
                errors=public_validation_errors(exc.errors()),
            ) from exc
    changed = {name: value for name, value in sent.items() if getattr(target, name) != value}
    for name, value in changed.items():
        setattr(target, name, value)
    return changed
