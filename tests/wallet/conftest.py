"""Helpers of the wallet tests: funded users, the ledger invariants, and a real HTTP payment
gateway served on loopback by uvicorn (the `http` adapter talks to it over a socket)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from app.users.models import User
from app.wallet.models import Transaction, TransactionKind
from tests.conftest import PASSWORD, make_settings

API = "/api/v1"
TOP_UPS = f"{API}/wallet/top-ups"
PAYMENTS = f"{API}/payments"
TRANSACTIONS = f"{API}/transactions"
WALLET = f"{API}/wallet"

VISA = "4242 4242 4242 4242"
DECLINED = "4000000000000002"
ISSUER_INSUFFICIENT = "4000000000009995"


def card(number: str = VISA, expiry: str = "12/39", cvv: str = "123") -> dict[str, str]:
    return {"number": number, "expiry": expiry, "cvv": cvv}


def wallet_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        # Receipts and files of these tests go to the test's own directory, not ./var.
        "email_outbox_dir": tmp_path / "outbox",
        "storage_dir": tmp_path / "files",
        # SQLite has one writer. The concurrency tests queue 100 payments (plus the in-process
        # receipt jobs, each a few writes) behind it on a shared 2-core machine in asyncio debug
        # mode; SQLite's busy handler polls instead of queueing fairly, so one unlucky writer can
        # wait past the 5 s default. Give it room: what is tested is correctness, not latency.
        "sqlite_busy_timeout_ms": 60_000,
        **overrides,
    }
    return make_settings(database_url, **values)


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Settings:
    return wallet_settings(database_url, tmp_path, **getattr(request, "param", {}))


@pytest.fixture
def job_worker() -> None:
    """Request this fixture to have the app under test run its jobs when they go through
    Redis too. With Redis the web process only hands jobs over; here it then consumes them as
    a worker process would, so the receipts of a payment really go out. Only where needed:
    under load, stopping a worker-role runner has been seen to hang in the taskiq receiver's
    shutdown (app/jobs/runner.py, `_consume`)."""


@pytest.fixture
def application(settings: Settings, request: pytest.FixtureRequest) -> FastAPI:
    if "job_worker" in request.fixturenames:
        settings = settings.model_copy(update={"jobs_in_web_process": True})
    return create_app(settings)


@pytest.fixture
def db(app: Any, application: FastAPI) -> Database:
    database: Database = application.state.db
    return database


@dataclass
class Member:
    id: int
    email: str
    headers: dict[str, str]


NewMember = Callable[..., Awaitable[Member]]


@pytest.fixture
def member(client: AsyncClient, sign_up: Any, login: Any) -> NewMember:
    """A signed-up, logged-in user, topped up with `balance` (a string) through the API."""

    async def _member(balance: str | None = None, email: str | None = None) -> Member:
        user = await sign_up(email=email or f"{uuid.uuid4().hex[:12]}@example.com")
        headers = await login(user["email"], PASSWORD)
        if balance is not None:
            response = await client.post(
                TOP_UPS, json={"amount": balance, "card": card()}, headers=headers
            )
            assert response.status_code == 201, response.text
        return Member(id=user["id"], email=user["email"], headers=headers)

    return _member


async def balance_of(client: AsyncClient, who: Member) -> str:
    response = await client.get(WALLET, headers=who.headers)
    assert response.status_code == 200, response.text
    return str(response.json()["balance"])


def assert_problem(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


Invariants = Callable[[], Awaitable[None]]


@pytest.fixture
def check_invariants(db: Database) -> Invariants:
    """The money invariants of docs/api.md, read straight from the database: no balance below zero;
    the sum of balances equals the sum of top-ups and import credits; and each user's balance
    equals what their own ledger rows add up to (so no update was lost or doubled); and every
    transfer has both its sides. Deleted users included: deletion never removes ledger rows."""

    async def _check() -> None:
        async with db.sessionmaker() as session:
            balances = dict((await session.execute(select(User.id, User.balance_minor))).all())
            assert all(balance >= 0 for balance in balances.values()), balances
            funded = await session.scalar(
                select(func.coalesce(func.sum(Transaction.amount_minor), 0)).where(
                    Transaction.kind.in_([TransactionKind.TOP_UP, TransactionKind.IMPORT_CREDIT])
                )
            )
            assert sum(balances.values()) == funded
            rows = (
                await session.execute(
                    select(Transaction.user_id, Transaction.kind, Transaction.amount_minor)
                )
            ).all()
            ledger = dict.fromkeys(balances, 0)
            for user_id, kind, amount in rows:
                ledger[user_id] += -amount if kind == TransactionKind.PAYMENT_SENT else amount
            assert ledger == balances
            # Every transfer has both sides, for the same amount.
            sides: dict[object, list[tuple[str, int]]] = {}
            transfers = await session.execute(
                select(Transaction.transfer_id, Transaction.kind, Transaction.amount_minor).where(
                    Transaction.transfer_id.is_not(None)
                )
            )
            for transfer_id, kind, amount in transfers:
                sides.setdefault(transfer_id, []).append((TransactionKind(kind).value, amount))
            for transfer_id, pair in sides.items():
                kinds = sorted(kind for kind, _ in pair)
                assert kinds == ["payment_received", "payment_sent"], (transfer_id, pair)
                assert pair[0][1] == pair[1][1], (transfer_id, pair)

    return _check


# --- a payment gateway on loopback ---------------------------------------------------------


@dataclass
class FakeGateway:
    """A small but real external gateway: it speaks the contract `HttpGateway` expects, over
    HTTP on 127.0.0.1, deduplicates charges by Idempotency-Key as a real one does, and can be
    told to be slow or to answer nonsense."""

    url: str = ""
    delay: float = 0.0
    answer_garbage: bool = False
    # Answer every charge with this status and an error body (a gateway having a bad day).
    fail_with: int | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    charges: dict[str, str] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set on the first charge

    async def charge(self, request: Request) -> Any:
        body = await request.json()
        key = request.headers.get("idempotency-key", "")
        self.requests.append({"key": key, "body": body})
        self.arrived.set()
        if self.delay:
            # Slow, but let go at teardown so the server can stop at once.
            with suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), self.delay)
        if self.answer_garbage:
            return PlainTextResponse("<html>502 Bad Gateway</html>", status_code=200)
        if self.fail_with is not None:
            return JSONResponse({"error": "internal"}, self.fail_with)
        number = body["card"]["number"]
        if number == DECLINED:
            return JSONResponse({"status": "declined", "reason": "card_declined"}, 402)
        if number == ISSUER_INSUFFICIENT:
            return JSONResponse({"status": "declined", "reason": "insufficient_funds"}, 402)
        reference = self.charges.setdefault(key, f"ch_{uuid.uuid4().hex[:16]}")
        return JSONResponse({"id": reference, "status": "approved"}, 201)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def bound_socket() -> socket.socket:
    """A TCP socket bound to a free loopback port, not listening yet: until it listens, every
    connection to it is refused, as to a gateway that is down."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serving(gateway: FakeGateway, sock: socket.socket) -> AsyncIterator[FakeGateway]:
    """Serve `gateway` with uvicorn on `sock` until the block ends."""
    app = Starlette(routes=[Route("/charges", gateway.charge, methods=["POST"])])
    config = uvicorn.Config(app, log_config=None, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        gateway.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        yield gateway
    finally:
        gateway.release.set()
        server.should_exit = True
        await task


@pytest.fixture
async def gateway_server() -> AsyncIterator[FakeGateway]:
    with bound_socket() as sock:
        async with serving(FakeGateway(), sock) as gateway:
            yield gateway


@pytest.fixture
def down_gateway_url() -> str:
    """A loopback address where nothing listens: every connection is refused."""
    return f"http://127.0.0.1:{free_port()}"
