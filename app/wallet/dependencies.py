"""Wallet dependencies: the payment gateway the settings name, on the shared HTTP client, and
the `Idempotency-Key` header the money-moving endpoints read."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from app.core.dependencies import HttpClientDep, SettingsDep
from app.wallet.gateway import PaymentGateway, make_gateway
from app.wallet.idempotency import IDEMPOTENCY_KEY_HEADER, MAX_KEY_LENGTH


async def get_gateway(settings: SettingsDep, http: HttpClientDep) -> PaymentGateway:
    # A thin adapter over the lifespan's client: building it per request costs nothing, and
    # tests can swap it for another real adapter (one with a shorter timeout) by override.
    return make_gateway(settings.payment_gateway, http=http, url=settings.payment_gateway_url)


GatewayDep = Annotated[PaymentGateway, Depends(get_gateway)]

# Visible ASCII only: the key goes into logs and a database column verbatim.
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_KEY_HEADER,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description=(
            "Optional. The same key from the same user with the same body within 24 h replays "
            "the first response (with `Idempotent-Replayed: true`) instead of doing the work "
            "again; with a different body it is a 422; while the first is in flight, a 409."
        ),
        examples=["6f1c2a1e-8d7b-4e8e-9a53-2f4bd5c0a0b1"],
    ),
]
