"""Currency conversion at the day's reference rate, from a public exchange-rate API.

Originally written with `requests` (the skill's reference page 06-sync-to-async.md tells how);
this is the async one: the shared `httpx.AsyncClient` is passed in (the app injects its pooled
client, made in the lifespan), so waiting for the network never blocks the event loop and no
connection is opened per call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated

import httpx
from pydantic import Field

# Frankfurter: free, keyless, the European Central Bank's daily reference rates.
RATES_URL = "https://api.frankfurter.dev/v1/latest"
TIMEOUT = httpx.Timeout(5.0, connect=3.0)
_CURRENCY = re.compile(r"[A-Z]{3}")
CENT = Decimal("0.01")


class RatesUnavailable(Exception):
    """The rate service could not be reached or answered nonsense; try again later."""


@dataclass(frozen=True)
class Conversion:
    amount: Decimal
    source: str
    target: str
    rate: Decimal
    converted: Decimal
    rate_date: date


async def convert_currency(
    amount: Annotated[Decimal, Field(gt=0, le=1_000_000_000, decimal_places=2)],
    source: str,
    target: str,
    http: httpx.AsyncClient,
) -> Conversion:
    """Convert an amount between two currencies at the latest ECB reference rate.

    Args:
        amount: The amount in the source currency, at most two decimals.
        source: ISO 4217 code of the currency converted from, e.g. EUR.
        target: ISO 4217 code of the currency converted to, e.g. USD.
        http: The HTTP client to call the rate service with.

    Returns:
        The rate used, its date, and the converted amount rounded to the cent.

    Raises:
        ValueError: A code is not three capital letters, or both are the same.
        LookupError: The rate service does not know one of the currencies.
        RatesUnavailable: The rate service is down, slow, or answered nonsense.
    """
    source, target = source.strip().upper(), target.strip().upper()
    for code in (source, target):
        if not _CURRENCY.fullmatch(code):
            raise ValueError("currency codes are three letters, like EUR or USD")
    if source == target:
        raise ValueError("source and target currencies are the same")
    try:
        response = await http.get(
            RATES_URL, params={"base": source, "symbols": target}, timeout=TIMEOUT
        )
    except httpx.HTTPError as exc:
        raise RatesUnavailable("the exchange-rate service is unreachable") from exc
    if response.status_code in (404, 422):
        raise LookupError(f"no exchange rate from {source} to {target}")
    if response.status_code != 200:
        raise RatesUnavailable(f"the exchange-rate service answered {response.status_code}")
    try:
        body = response.json()
        rate = Decimal(str(body["rates"][target]))
        rate_date = date.fromisoformat(body["date"])
    except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
        raise RatesUnavailable("the exchange-rate service answered nonsense") from exc
    if not rate.is_finite() or rate <= 0:
        raise RatesUnavailable("the exchange-rate service answered nonsense")
    converted = (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)
    return Conversion(amount, source, target, rate, converted, rate_date)
