"""Payments per second on PostgreSQL: our conditional UPDATE against the naive read-check-write.

    .venv/bin/python -m bench.payments [--clients 64] [--duration 15] [--users 32] [--rounds 2]

Drives the service layer directly with asyncio tasks, no HTTP: `--clients` tasks, each in a
loop until the deadline, open a session, make one payment between two random users, close it.
What differs between the two variants is only how the balances change:

- `ours`: `app.wallet.service.pay`, the code the API runs: one conditional UPDATE per side
  (`SET balance = balance - :x WHERE id = :id AND balance >= :x`), lowest user id first.
- `naive`: the seed's way, read the balance, check it in Python, write the new value back
  (`SET balance = :value_computed_in_python`), payer first.

Both write the two ledger rows and queue the receipt job in the same transaction, on the app's
own engine and pool (`open_database`, so DB_POOL_SIZE + DB_MAX_OVERFLOW connections, 10 + 20 by
default, shared by the clients first come, first served). After each run the ledger is checked
against the balances: a payment whose balance write was overwritten by another (a lost update)
shows as money created or destroyed. Rounds interleave the variants on one database, reset to
the same balances before each run. Everything is on 127.0.0.1; each run lasts `--duration`
seconds (at most 60); the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

import app.job_kinds  # noqa: F401  (registers the receipt job kind that `pay` queues)
from app.core.db import Database, open_database, utcnow
from app.core.observability import configure_logging
from app.core.settings import Settings
from app.jobs.queue import enqueue
from app.users.models import User
from app.wallet import service
from app.wallet.models import Transaction, TransactionKind
from bench import database

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_payments"
MAX_DURATION_S = 60

Pay = Callable[[AsyncSession, int, int, int], Awaitable[None]]


async def pay_ours(session: AsyncSession, payer_id: int, payee_id: int, amount_minor: int) -> None:
    await service.pay(session, payer_id=payer_id, payee_id=payee_id, amount_minor=amount_minor)


async def pay_naive(session: AsyncSession, payer_id: int, payee_id: int, amount_minor: int) -> None:
    """Read, check in Python, write back: what `process_payment` in the seed grows into."""
    balance = await session.scalar(
        select(User.balance_minor).where(User.id == payer_id, User.is_active.is_(True))
    )
    if balance is None or balance < amount_minor:
        raise service.InsufficientFunds("your balance does not cover this payment")
    payee_balance = await session.scalar(
        select(User.balance_minor).where(User.id == payee_id, User.is_active.is_(True))
    )
    if payee_balance is None:
        raise service.PayeeNotFound("payee not found")
    sent_id = uuid.uuid4()
    await enqueue(
        session, kind=service.RECEIPT_JOB, args={"transaction_id": str(sent_id)}, user_id=payer_id
    )
    await session.execute(
        update(User).where(User.id == payer_id).values(balance_minor=balance - amount_minor)
    )
    await session.execute(
        update(User).where(User.id == payee_id).values(balance_minor=payee_balance + amount_minor)
    )
    now, transfer_id = utcnow(), uuid.uuid4()
    common = {"amount_minor": amount_minor, "transfer_id": transfer_id, "created_at": now}
    session.add_all(
        [
            Transaction(
                id=sent_id,
                user_id=payer_id,
                kind=TransactionKind.PAYMENT_SENT,
                balance_after_minor=balance - amount_minor,
                counterparty_id=payee_id,
                **common,
            ),
            Transaction(
                id=uuid.uuid4(),
                user_id=payee_id,
                kind=TransactionKind.PAYMENT_RECEIVED,
                balance_after_minor=payee_balance + amount_minor,
                counterparty_id=payer_id,
                **common,
            ),
        ]
    )
    await session.commit()


VARIANTS: dict[str, Pay] = {"ours": pay_ours, "naive": pay_naive}


@dataclass
class Run:
    variant: str
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, service.InsufficientFunds):
        return "insufficient_funds"
    if isinstance(exc, DBAPIError):
        message = str(exc.orig)
        if "deadlock detected" in message:
            return "deadlock"
        if "violates check constraint" in message:
            return "check_violation"
        return f"db:{type(exc.orig).__name__}"
    return type(exc).__name__


async def run(
    db: Database, variant: str, user_ids: list[int], clients: int, duration: float, amount: int
) -> Run:
    pay = VARIANTS[variant]
    result = Run(variant)
    deadline = time.monotonic() + duration

    async def client(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            payer, payee = rng.sample(user_ids, 2)
            started = time.perf_counter()
            try:
                async with db.sessionmaker() as session:
                    await pay(session, payer, payee, amount)
            except Exception as exc:  # every failure is counted, by kind
                result.outcomes[_outcome(exc)] += 1
            else:
                result.outcomes["ok"] += 1
                result.latencies_ms.append((time.perf_counter() - started) * 1000)

    started = time.monotonic()
    await asyncio.gather(*(client(seed) for seed in range(clients)))
    result.elapsed_s = time.monotonic() - started
    return result


async def reset(db: Database, initial_minor: int) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text("TRUNCATE transactions, jobs"))
        await conn.execute(update(User).values(balance_minor=initial_minor))
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE users, transactions, jobs"))


async def audit(db: Database, initial_minor: int, amount: int) -> dict[str, int]:
    """The balances against the ledger. With one fixed amount per payment, every lost update
    moves a balance by a multiple of it, so the drift counts them."""
    async with db.sessionmaker() as session:
        balances = dict((await session.execute(select(User.id, User.balance_minor))).all())
        rows = (
            await session.execute(
                select(
                    Transaction.user_id, Transaction.kind, func.sum(Transaction.amount_minor)
                ).group_by(Transaction.user_id, Transaction.kind)
            )
        ).all()
        payments = await session.scalar(
            select(func.count())
            .select_from(Transaction)
            .where(Transaction.kind == TransactionKind.PAYMENT_SENT)
        )
    expected = dict.fromkeys(balances, initial_minor)
    for user_id, kind, total in rows:
        expected[user_id] += -int(total) if kind == TransactionKind.PAYMENT_SENT else int(total)
    drift = {user: balances[user] - expected[user] for user in balances}
    return {
        "payments_in_ledger": int(payments or 0),
        "users_with_wrong_balance": sum(1 for d in drift.values() if d),
        "money_created_minor": sum(drift.values()),
        "lost_updates": sum(abs(d) for d in drift.values()) // amount,
        "negative_balances": sum(1 for b in balances.values() if b < 0),
    }


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    await database.recreate(args.database_url)
    try:
        await asyncio.to_thread(database.migrate, args.database_url)
        user_ids = await database.seed_users(args.database_url, args.users)
        settings = Settings(
            _env_file=None,
            environment="test",
            database_url=args.database_url,
            log_level="ERROR",
        )
        # ERROR: `enqueue` warns once per job that no runner runs here (none should: the
        # receipts would compete with the payments for the database).
        configure_logging(fmt="json", level="ERROR")
        db = await open_database(settings)
        initial = args.initial_balance * 100
        amount = args.amount * 100
        rows = []
        try:
            for round_number in range(1, args.rounds + 1):
                for variant in args.variants:
                    await reset(db, initial)
                    result = await run(db, variant, user_ids, args.clients, args.duration, amount)
                    checks = await audit(db, initial, amount)
                    row = {
                        "round": round_number,
                        "variant": variant,
                        "clients": args.clients,
                        "users": args.users,
                        "pool": settings.db_pool_size + settings.db_max_overflow,
                        "seconds": round(result.elapsed_s, 2),
                        "payments_per_s": round(result.outcomes["ok"] / result.elapsed_s, 1),
                        "p50_ms": round(_percentile(result.latencies_ms, 50), 1),
                        "p99_ms": round(_percentile(result.latencies_ms, 99), 1),
                        "outcomes": dict(result.outcomes),
                        **checks,
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            await db.dispose()
    finally:
        await database.drop(args.database_url)
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| variant | payments/s (median of rounds) | p50 ms | p99 ms | refused (funds) | "
        "deadlocks | other errors | lost updates | money created | negative balances |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant in dict.fromkeys(row["variant"] for row in rows):
        mine = [row for row in rows if row["variant"] == variant]
        errors: Counter[str] = Counter()
        for row in mine:
            errors.update(row["outcomes"])
        other = sum(
            n for kind, n in errors.items() if kind not in ("ok", "insufficient_funds", "deadlock")
        )
        lines.append(
            f"| {variant} | {statistics.median(r['payments_per_s'] for r in mine):.0f} "
            f"({', '.join(str(r['payments_per_s']) for r in mine)}) "
            f"| {statistics.median(r['p50_ms'] for r in mine):.1f} "
            f"| {statistics.median(r['p99_ms'] for r in mine):.1f} "
            f"| {errors['insufficient_funds']} | {errors['deadlock']} | {other} "
            f"| {sum(r['lost_updates'] for r in mine)} "
            f"| {sum(r['money_created_minor'] for r in mine) / 100:.2f} "
            f"| {sum(r['negative_balances'] for r in mine)} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.payments",
        description=(
            "Payments per second on PostgreSQL, the service's conditional UPDATE against a naive "
            "read-check-write, with lost updates and negative balances counted from the ledger."
        ),
    )
    parser.add_argument("--database-url", default=DEFAULT_URL, help="created, then dropped")
    parser.add_argument("--clients", type=int, default=64, help="concurrent payers (tasks)")
    parser.add_argument("--duration", type=float, default=15, help="seconds per run, at most 60")
    parser.add_argument("--rounds", type=int, default=2, help="each round runs every variant")
    parser.add_argument("--users", type=int, default=32, help="accounts paying each other")
    parser.add_argument("--initial-balance", type=int, default=50, help="per user, whole units")
    parser.add_argument("--amount", type=int, default=1, help="per payment, whole units")
    parser.add_argument(
        "--variants", type=lambda s: s.split(","), default=["ours", "naive"], help="ours,naive"
    )
    args = parser.parse_args(argv)
    if not 0 < args.duration <= MAX_DURATION_S:
        parser.error(f"--duration must be in (0, {MAX_DURATION_S}]")
    if args.users < 2 or args.clients < 1 or args.rounds < 1:
        parser.error("need at least 2 users, 1 client and 1 round")
    if unknown := set(args.variants) - set(VARIANTS):
        parser.error(f"unknown variants {sorted(unknown)}")
    if not args.database_url.startswith("postgresql+asyncpg://"):
        parser.error("PostgreSQL only (postgresql+asyncpg://...): SQLite serialises every write")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    rows = asyncio.run(main_async(args))
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
