"""Wallet dependencies: the payment gateway the settings name, on the shared HTTP client."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.dependencies import HttpClientDep, SettingsDep
from app.wallet.gateway import PaymentGateway, make_gateway


async def get_gateway(settings: SettingsDep, http: HttpClientDep) -> PaymentGateway:
    # A thin adapter over the lifespan's client: building it per request costs nothing, and
    # tests can swap it for another real adapter (one with a shorter timeout) by override.
    return make_gateway(settings.payment_gateway, http=http, url=settings.payment_gateway_url)


GatewayDep = Annotated[PaymentGateway, Depends(get_gateway)]
