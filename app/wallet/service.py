"""Wallet: the rules and the transactions. No FastAPI in here; errors are `AppError` kinds.

Money moves only through single conditional UPDATEs that check and change a balance in one
statement (`... SET balance_minor = balance_minor - :x WHERE id = :id AND balance_minor >= :x`),
never "read the balance, check it in Python, write it back": two requests that both read 100
would both pay 80. Every change writes its ledger row in the same transaction, and a payment
updates its two balances in a fixed order (lowest user id first), so two payments crossing
between the same two people cannot deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import READ_ONLY, utcnow
from app.core.errors import AppError, BadRequest, InvalidInput, NotFound
from app.core.money import format_minor
from app.core.pagination import PageParams, newest_first, next_page
from app.core.ratelimit import Bucket
from app.jobs.queue import enqueue
from app.users.models import User
from app.wallet import idempotency
from app.wallet.cards import Card
from app.wallet.gateway import CardDeclined, PaymentGateway
from app.wallet.idempotency import IdempotentRequest
from app.wallet.models import Transaction, TransactionKind
from app.wallet.schemas import TransactionRead

log = structlog.get_logger("app.wallet")

RECEIPT_JOB = "notifications.payment_receipt"
# Namespace of the keys we send the gateway: one per (user, Idempotency-Key), so two users'
# identical keys never collide at the gateway.
_GATEWAY_KEYS = uuid.UUID("0b5a6c52-4a0e-4c38-9d1e-6f1f3c2d7a90")


@dataclass(frozen=True)
class Outcome:
    """The answer to a money-moving request, and whether it was replayed from its key."""

    transaction: TransactionRead
    replayed: bool = False


def to_read(tx: Transaction) -> TransactionRead:
    return TransactionRead(
        id=tx.id,
        kind=TransactionKind(tx.kind).value,
        amount=format_minor(tx.amount_minor),
        balance_after=format_minor(tx.balance_after_minor),
        counterparty_id=tx.counterparty_id,
        description=tx.description,
        card_brand=tx.card_brand,
        card_last4=tx.card_last4,
        created_at=tx.created_at,
    )


def _replayed(stored: idempotency.StoredResponse) -> Outcome:
    if stored.status >= 400:
        raise idempotency.replay_error(stored)
    return Outcome(TransactionRead.model_validate(stored.body), replayed=True)


# --- top-ups -------------------------------------------------------------------------------


async def top_up(
    session: AsyncSession,
    gateway: PaymentGateway,
    *,
    user_id: int,
    amount_minor: int,
    card: Card,
    currency: str,
    idempotent: IdempotentRequest | None,
) -> Outcome:
    """Charge the card, then credit the balance. The card is charged outside any database
    transaction (the gateway may take seconds; a held transaction would hold a connection and,
    on SQLite, the whole database's write lock), so the key is claimed and committed first: a
    second request with the key meanwhile gets 409 instead of charging the card again."""
    if idempotent is not None:
        stored = await idempotency.claim(session, user_id, idempotent)
        await session.commit()
        if stored is not None:
            return _replayed(stored)
        gateway_key = str(uuid.uuid5(_GATEWAY_KEYS, f"{user_id}:{idempotent.key}"))
    else:
        gateway_key = str(uuid.uuid4())

    try:
        charge = await gateway.charge(
            amount_minor=amount_minor, currency=currency, card=card, idempotency_key=gateway_key
        )
    except CardDeclined as declined:
        log.info("top_up_declined", user_id=user_id, code=declined.code, card_last4=card.last4)
        if idempotent is not None:
            body = idempotency.problem_body(declined)
            await idempotency.complete(session, user_id, idempotent.key, declined.status_code, body)
            await session.commit()
        raise
    except BaseException:
        # Gateway down or slow (502/504), or cancelled: nothing was credited; give the key
        # back so the client can retry with it (the gateway sees the same key again).
        if idempotent is not None:
            await session.rollback()
            await idempotency.release(session, user_id, idempotent.key)
            await session.commit()
        raise

    try:
        balance = await _credit(session, user_id, amount_minor)
        if balance is None:
            raise NotFound(f"user {user_id} not found", code="user_not_found")
        tx = Transaction(
            id=uuid.uuid4(),
            user_id=user_id,
            kind=TransactionKind.TOP_UP,
            amount_minor=amount_minor,
            balance_after_minor=balance,
            card_brand=card.brand.value,
            card_last4=card.last4,
            gateway_reference=charge.reference,
            created_at=utcnow(),
        )
        session.add(tx)
        read = to_read(tx)
        if idempotent is not None:
            await idempotency.complete(
                session, user_id, idempotent.key, 201, read.model_dump(mode="json")
            )
        await session.commit()
    except BaseException:
        # The card was charged and the balance was not credited. The reference is what an
        # operator (or a retry with the same key, which the gateway deduplicates) needs.
        log.error("top_up_not_credited", user_id=user_id, gateway_reference=charge.reference)
        await session.rollback()
        if idempotent is not None:
            await idempotency.release(session, user_id, idempotent.key)
            await session.commit()
        raise
    log.info("top_up", user_id=user_id, amount_minor=amount_minor, transaction_id=str(tx.id))
    return Outcome(read)


async def _credit(session: AsyncSession, user_id: int, amount_minor: int) -> int | None:
    """Add to a balance; the new balance, or None when there is no such user."""
    result = await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(balance_minor=User.balance_minor + amount_minor)
        .returning(User.balance_minor)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none()


# --- payments ------------------------------------------------------------------------------


class InsufficientFunds(BadRequest):
    code = "insufficient_funds"


class PayeeNotFound(NotFound):
    code = "payee_not_found"


async def pay(
    session: AsyncSession,
    *,
    payer_id: int,
    payee_id: int | None = None,
    payee_email: str | None = None,
    amount_minor: int,
    description: str | None = None,
    idempotent: IdempotentRequest | None = None,
    payee_lookup_failures: Bucket | None = None,
) -> Outcome:
    """Move `amount_minor` from payer to payee: both ledger sides, both balances, the receipt
    job and the idempotency record, in one database transaction. The answer is the payer's
    side. `payee_lookup_failures`: the payer's allowance of `payee_not_found` answers."""
    if idempotent is not None:
        stored = await idempotency.claim(session, payer_id, idempotent)
        if stored is not None:
            await session.commit()
            return _replayed(stored)
    try:
        sent = await _transfer(
            session,
            payer_id=payer_id,
            payee_id=payee_id,
            payee_email=payee_email,
            amount_minor=amount_minor,
            description=description,
            payee_lookup_failures=payee_lookup_failures,
        )
        read = to_read(sent)
        if idempotent is not None:
            await idempotency.complete(
                session, payer_id, idempotent.key, 201, read.model_dump(mode="json")
            )
        await session.commit()
    except AppError as refused:
        await session.rollback()
        # A refusal (4xx) is this request's answer: keep it for the key. A 5xx is not, nor a
        # 429 (retrying later with the same key must be able to succeed).
        if idempotent is not None and refused.status_code < 500 and refused.status_code != 429:
            body = idempotency.problem_body(refused)
            await idempotency.record_outcome(
                session, payer_id, idempotent, refused.status_code, body
            )
            await session.commit()
        raise
    log.info("payment", payer_id=payer_id, amount_minor=amount_minor, transaction_id=str(sent.id))
    return Outcome(read)


async def _transfer(
    session: AsyncSession,
    *,
    payer_id: int,
    payee_id: int | None,
    payee_email: str | None,
    amount_minor: int,
    description: str | None,
    payee_lookup_failures: Bucket | None,
) -> Transaction:
    # The payer's funds first: answering `insufficient_funds` only for registered payees told
    # anyone with an empty wallet which emails have an account.
    payer = (
        await session.execute(select(User.balance_minor, User.email).where(User.id == payer_id))
    ).one_or_none()
    if payer is None:
        raise NotFound(f"user {payer_id} not found", code="user_not_found")
    if payee_id == payer_id or (payee_email is not None and payee_email.lower() == payer.email):
        raise InvalidInput("you cannot pay yourself", code="payment_to_self")
    if payer.balance_minor < amount_minor:
        raise InsufficientFunds("your balance does not cover this payment")
    payee = await _find_payee(
        session, payee_id=payee_id, payee_email=payee_email, lookup_failures=payee_lookup_failures
    )
    if payee == payer_id:
        raise InvalidInput("you cannot pay yourself", code="payment_to_self")

    # The receipts (one job that mails both sides) are queued in this transaction: the runner
    # is handed the job on commit, never on rollback, and a failure to send can never undo the
    # payment, nor can a job queue that is down (the hand-off is made when it is back).
    sent_id = uuid.uuid4()
    await enqueue(
        session, kind=RECEIPT_JOB, args={"transaction_id": str(sent_id)}, user_id=payer_id
    )

    # Fixed lock order: the lower user id's row first. A->B and B->A at the same moment then
    # both lock the same row first, and one waits for the other instead of deadlocking.
    balances: dict[int, int] = {}
    for user_id in sorted((payer_id, payee)):
        if user_id == payer_id:
            debited = await session.execute(
                update(User)
                .where(User.id == payer_id, User.balance_minor >= amount_minor)
                .values(balance_minor=User.balance_minor - amount_minor)
                .returning(User.balance_minor)
                .execution_options(synchronize_session=False)
            )
            balance = debited.scalar_one_or_none()
            if balance is None:
                raise InsufficientFunds("your balance does not cover this payment")
        else:
            credited = await session.execute(
                update(User)
                .where(User.id == payee, User.is_active.is_(True))
                .values(balance_minor=User.balance_minor + amount_minor)
                .returning(User.balance_minor)
                .execution_options(synchronize_session=False)
            )
            balance = credited.scalar_one_or_none()
            if balance is None:  # deactivated or deleted since we looked it up
                raise PayeeNotFound("payee not found")
        balances[user_id] = balance

    now = utcnow()
    transfer_id = uuid.uuid4()
    sent = Transaction(
        id=sent_id,
        user_id=payer_id,
        kind=TransactionKind.PAYMENT_SENT,
        amount_minor=amount_minor,
        balance_after_minor=balances[payer_id],
        counterparty_id=payee,
        transfer_id=transfer_id,
        description=description,
        created_at=now,
    )
    received = Transaction(
        id=uuid.uuid4(),
        user_id=payee,
        kind=TransactionKind.PAYMENT_RECEIVED,
        amount_minor=amount_minor,
        balance_after_minor=balances[payee],
        counterparty_id=payer_id,
        transfer_id=transfer_id,
        description=description,
        created_at=now,
    )
    session.add_all([sent, received])
    return sent


async def _find_payee(
    session: AsyncSession,
    *,
    payee_id: int | None,
    payee_email: str | None,
    lookup_failures: Bucket | None,
) -> int:
    """The payee's id. Each `payee_not_found` answer takes a unit of `lookup_failures`
    atomically (a 429 once they are used up), so probing which emails are registered is
    slow even with parallel requests; the payer gets 429 for every payee meanwhile."""
    if lookup_failures is not None:
        await lookup_failures.check()
    query = select(User.id).where(User.is_active.is_(True))
    if payee_id is not None:
        query = query.where(User.id == payee_id)
    elif payee_email is not None:
        query = query.where(User.email == payee_email.lower())
    else:
        raise InvalidInput("name the payee by payee_id or payee_email", code="payee_missing")
    found = await session.scalar(query)
    if found is None:
        if lookup_failures is not None:
            await lookup_failures.acquire()
        # Inactive payees too: whether an account exists but is disabled is not revealed.
        raise PayeeNotFound("payee not found")
    return found


# --- reading -------------------------------------------------------------------------------


async def list_transactions(
    session: AsyncSession, user_id: int, page: PageParams
) -> tuple[Sequence[Transaction], str | None]:
    """A page of the user's transactions, newest first (created_at, then id, descending)."""
    query = newest_first(
        select(Transaction).where(Transaction.user_id == user_id),
        Transaction.created_at,
        Transaction.id,
        page,
    )
    # One autocommit read: no transaction, no lock.
    await session.connection(execution_options=READ_ONLY)
    rows = (await session.scalars(query)).all()
    await session.commit()
    return next_page(rows, page)


async def get_transaction(
    session: AsyncSession, transaction_id: uuid.UUID, *, caller_id: int, superuser: bool
) -> Transaction:
    await session.connection(execution_options=READ_ONLY)
    tx = await session.get(Transaction, transaction_id)
    await session.commit()
    # Someone else's transaction is "not found": its existence is not revealed.
    if tx is None or (tx.user_id != caller_id and not superuser):
        raise NotFound(f"transaction {transaction_id} not found", code="transaction_not_found")
    return tx
