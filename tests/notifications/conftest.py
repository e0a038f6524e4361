"""Email tests send through a real SMTP server (aiosmtpd) listening on loopback in the test's own
event loop, and read what it received. They run on both job backends (the `backend` fixture of
tests/jobs)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI
from httpx import AsyncClient

from app.core.settings import Settings
from tests.conftest import PASSWORD, _redis_url_for_worker, make_settings
from tests.jobs.conftest import FAST, backend, build_app, enqueue_job, job_row, wait_for
from tests.jobs.processes import free_port

# Fixtures shared with the job tests: both backends, and waiting on a job's row.
__all__ = ["backend", "enqueue_job", "job_row", "wait_for"]

API = "/api/v1"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SmtpServer:
    """What the server received, and a switch to refuse the next messages with a temporary
    error (451), as a mail server that is overloaded does."""

    port: int
    received: list[Received] = field(default_factory=list)
    refuse_next: int = 0
    refused: int = 0
    server: asyncio.Server | None = None

    async def handle_DATA(  # noqa: N802  (the name aiosmtpd calls)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.refuse_next > 0:
            self.refuse_next -= 1
            self.refused += 1
            return "451 4.3.0 try again later"
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # hostname given: aiosmtpd would otherwise ask the resolver for this host's FQDN.
        self.server = await loop.create_server(
            lambda: SMTP(self, hostname="localhost", loop=loop), "127.0.0.1", self.port
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    def to(self, address: str) -> list[EmailMessage]:
        return [item.message for item in self.received if address in item.rcpt_tos]

    async def wait_for(self, count: int, seconds: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if len(self.received) >= count:
                return self.received
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {count} messages, got {len(self.received)}")


@pytest.fixture
async def smtp_server() -> AsyncIterator[SmtpServer]:
    server = SmtpServer(free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    database_url: str,
    backend: str,
    tmp_path: Path,
    smtp_server: SmtpServer,
) -> Settings:
    """SMTP to the test's server; a test may override fields with
    `@pytest.mark.parametrize("settings", [{...}], indirect=True)`."""
    values: dict[str, Any] = {
        **FAST,
        "redis_url": _redis_url_for_worker() if backend == "redis" else None,
        "email_backend": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_server.port,
        "email_from": "wallet@example.com",
        "email_outbox_dir": tmp_path / "outbox",
        "storage_dir": tmp_path / "files",
    }
    return make_settings(database_url, **(values | getattr(request, "param", {})))


@pytest.fixture
def application(settings: Settings) -> FastAPI:
    return build_app(settings)


@dataclass
class Person:
    id: int
    email: str
    name: str
    headers: dict[str, str]


async def new_person(client: AsyncClient, *, name: str, balance: str | None = None) -> Person:
    """Sign up, log in and (optionally) top up through the API, as a user would."""
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    response = await client.post(
        f"{API}/users", json={"email": email, "password": PASSWORD, "name": name}
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    token = await client.post(f"{API}/auth/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    if balance is not None:
        card = {"number": "4242424242424242", "expiry": "12/39", "cvv": "123"}
        topped = await client.post(
            f"{API}/wallet/top-ups", json={"amount": balance, "card": card}, headers=headers
        )
        assert topped.status_code == 201, topped.text
    return Person(user["id"], email, name, headers)
