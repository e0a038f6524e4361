"""Wallet routes: HTTP only. Parse, authorise, call the service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.core.db import SessionDep
from app.core.dependencies import PageParamsDep, RateLimiterDep, SettingsDep
from app.core.errors import problems
from app.core.money import format_minor
from app.core.pagination import Page
from app.users.dependencies import CurrentUser
from app.wallet import service
from app.wallet.dependencies import GatewayDep, IdempotencyKeyHeader
from app.wallet.idempotency import REPLAYED_HEADER, idempotent_request
from app.wallet.schemas import PaymentCreate, TopUpCreate, TransactionRead, WalletRead

router = APIRouter(tags=["wallet"])

REPLAYED = {
    REPLAYED_HEADER: {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same Idempotency-Key and body",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


@router.get("/wallet", responses=problems(401, 503))
async def read_wallet(user: CurrentUser, settings: SettingsDep) -> WalletRead:
    # The balance was read with the user, in this request, a moment ago.
    return WalletRead(balance=format_minor(user.balance_minor), currency=settings.currency)


@router.post(
    "/wallet/top-ups",
    status_code=status.HTTP_201_CREATED,
    response_description="The top-up transaction",
    responses={
        201: {"headers": REPLAYED},
        **problems(
            401,
            413,
            422,
            503,
            card_declined=402,
            card_insufficient_funds=402,
            idempotency_in_progress=409,
            idempotency_key_reused=422,
            gateway_error=502,
            gateway_unavailable=502,
            gateway_timeout=504,
        ),
    },
)
async def top_up(
    body: TopUpCreate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    gateway: GatewayDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> TransactionRead:
    """Fund the balance with a card. The card number and CVV are passed to the gateway and
    dropped: the transaction keeps the brand and the last four digits only."""
    idempotent = idempotent_request(
        idempotency_key,
        secret=settings.secret,
        scope="POST /wallet/top-ups",
        data=body.fingerprint_data(),
    )
    outcome = await service.top_up(
        session,
        gateway,
        user_id=user.id,
        amount_minor=body.amount_minor,
        card=body.card,
        currency=settings.currency,
        idempotent=idempotent,
    )
    if outcome.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return outcome.transaction


@router.post(
    "/payments",
    status_code=status.HTTP_201_CREATED,
    response_description="The payer's side of the payment",
    responses={
        201: {"headers": REPLAYED},
        **problems(
            401,
            413,
            422,
            429,
            503,
            insufficient_funds=400,
            payee_not_found=404,
            idempotency_in_progress=409,
            payment_to_self=422,
            idempotency_key_reused=422,
        ),
    },
)
async def pay(
    body: PaymentCreate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    limiter: RateLimiterDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> TransactionRead:
    """Pay another user, named by `payee_id` or `payee_email`. Both sides are written, and
    both receive a receipt by email after the payment commits."""
    idempotent = idempotent_request(
        idempotency_key,
        secret=settings.secret,
        scope="POST /payments",
        data=body.fingerprint_data(),
    )
    outcome = await service.pay(
        session,
        payer_id=user.id,
        payee_id=body.payee_id,
        payee_email=body.payee_email,
        amount_minor=body.amount_minor,
        description=body.description,
        idempotent=idempotent,
        payee_lookup_failures=limiter.bucket(
            settings.payee_lookup_failures_per_user,
            f"payee-lookup:{user.id}",
            what="payments to unknown payees",
        ),
    )
    if outcome.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return outcome.transaction


@router.get("/transactions", responses=problems(401, 422, 503, invalid_cursor=422))
async def list_transactions(
    user: CurrentUser, session: SessionDep, page: PageParamsDep
) -> Page[TransactionRead]:
    """Your transactions, newest first."""
    rows, next_cursor = await service.list_transactions(session, user.id, page)
    return Page(items=[service.to_read(tx) for tx in rows], next_cursor=next_cursor)


@router.get(
    "/transactions/{transaction_id}",
    responses=problems(401, 422, 503, transaction_not_found=404),
)
async def read_transaction(
    transaction_id: Annotated[uuid.UUID, Path()], user: CurrentUser, session: SessionDep
) -> TransactionRead:
    tx = await service.get_transaction(
        session, transaction_id, caller_id=user.id, superuser=user.is_superuser
    )
    return service.to_read(tx)
