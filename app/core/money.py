"""Money: integer minor units in the database, a two-decimal string in JSON."""

from __future__ import annotations

from decimal import Decimal

MINOR_UNITS_PER_MAJOR = 100


def format_minor(minor: int) -> str:
    """1250 -> "12.50"."""
    return f"{Decimal(minor) / MINOR_UNITS_PER_MAJOR:.2f}"
