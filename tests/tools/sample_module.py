"""Plain functions, written with no thought of HTTP: what `python -m app expose` serves."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal


def mean(values: list[Decimal]) -> Decimal:
    """The arithmetic mean of some amounts.

    Args:
        values: The amounts, at least one.
    """
    if not values:
        raise ValueError("the mean of nothing is undefined")
    return sum(values, Decimal(0)) / len(values)


def slugify(text: str, separator: str = "-") -> str:
    """A URL-friendly version of a title."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    if not words:
        raise LookupError("no letters or digits to make a slug from")
    return separator.join(words)


async def pause_and_echo(text: str, seconds: float = 0.0) -> str:
    """Wait (without blocking anything), then answer the text back."""
    await asyncio.sleep(min(seconds, 1.0))
    return text


def untyped(value):  # type: ignore[no-untyped-def]
    """Not exposable: no type hints."""
    return value


def _helper(value: int) -> int:
    return value
