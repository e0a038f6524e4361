"""The full card number never reaches a log line or a response: everything the app logs at
DEBUG (our events, the access log, every SQL statement with its parameters, httpx) during
a top-up, a declined top-up and a card that fails validation is captured and searched."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from app.core.settings import Settings
from tests.wallet.conftest import (
    TOP_UPS,
    FakeGateway,
    NewMember,
    assert_problem,
    balance_of,
    card,
    wallet_settings,
)

# Valid (Luhn) numbers that appear nowhere else: if one shows up in a log, a card leaked.
APPROVED = "4539 1488 0343 6467"
DECLINED = "4000 0000 0000 0002"  # the sandbox's (and the fake gateway's) decline number
EXPIRED_BUT_VALID_NUMBER = "5105 1051 0510 5100"
NOT_LUHN = "4539 1488 0343 6468"


def forms(number: str) -> list[str]:
    digits = number.replace(" ", "")
    return [number, digits, number.replace(" ", "-"), digits[:12], digits[4:]]


@pytest.fixture(params=["sandbox", "http"])
def settings(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, gateway_server: FakeGateway
) -> Settings:
    gateway: dict[str, Any] = (
        {"payment_gateway": "http", "payment_gateway_url": gateway_server.url}
        if request.param == "http"
        else {}
    )
    # DEBUG: the most the app can log, SQL statements and their parameters included.
    return wallet_settings(database_url, tmp_path, log_level="DEBUG", **gateway)


@pytest.fixture
def captured_logs(app: FastAPI) -> Iterator[list[str]]:
    """Every log record, rendered by the app's own formatter, plus its raw message and any
    exception text."""
    lines: list[str] = []
    root = logging.getLogger()
    formatter = root.handlers[0].formatter if root.handlers else None

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(str(record.msg))
            lines.append(str(record.args))
            if record.exc_info and record.exc_info[1] is not None:
                lines.append(repr(record.exc_info[1]))
            if formatter is not None:
                lines.append(formatter.format(record))

    handler = Capture(level=logging.DEBUG)
    root.addHandler(handler)
    # SQLAlchemy keeps its loggers at WARNING unless asked: ask for every statement and its
    # parameters, as `echo=True` would print them.
    sql = logging.getLogger("sqlalchemy.engine")
    sql_level = sql.level
    sql.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        sql.setLevel(sql_level)
        root.removeHandler(handler)


def assert_not_in(texts: list[str], number: str) -> None:
    for form in forms(number):
        leaked = [text for text in texts if form in text]
        assert not leaked, f"{form!r} found in: {leaked[:3]}"


async def test_no_card_number_is_logged_or_returned(
    client: AsyncClient, member: NewMember, captured_logs: list[str]
) -> None:
    alice = await member()
    responses: list[Response] = []

    approved = await client.post(
        TOP_UPS,
        json={"amount": "12.00", "card": card(APPROVED, cvv="7391")},
        headers={**alice.headers, "Idempotency-Key": "secret-1"},
    )
    assert approved.status_code == 201, approved.text
    assert approved.json()["card_last4"] == "6467"
    responses.append(approved)

    declined = await client.post(
        TOP_UPS, json={"amount": "12.00", "card": card(DECLINED)}, headers=alice.headers
    )
    assert_problem(declined, 402, "card_declined")
    responses.append(declined)

    for bad in (card(EXPIRED_BUT_VALID_NUMBER, expiry="01/21"), card(NOT_LUHN)):
        invalid = await client.post(
            TOP_UPS, json={"amount": "12.00", "card": bad}, headers=alice.headers
        )
        assert_problem(invalid, 422, "validation_error")
        responses.append(invalid)

    assert await balance_of(client, alice) == "12.00"
    # The capture works: the requests above were logged, SQL with its parameters too.
    assert any('"event": "request"' in line for line in captured_logs)
    assert any("INSERT INTO transactions" in line for line in captured_logs)
    texts = captured_logs + [response.text for response in responses]
    texts += [str(dict(response.headers)) for response in responses]
    for number in (APPROVED, DECLINED, EXPIRED_BUT_VALID_NUMBER, NOT_LUHN):
        assert_not_in(texts, number)
    assert "7391" not in approved.text
