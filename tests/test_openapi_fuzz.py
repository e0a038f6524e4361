"""Schemathesis against our own OpenAPI schema: valid and invalid requests to every operation,
signed in as a user and as a superuser, each response held to *all* of schemathesis' checks:
no 5xx, only documented status codes, content types and headers, bodies that match their
schema, valid data accepted and invalid data refused, auth not ignored.

The app runs its lifespan in the test's event loop and is served there by uvicorn on loopback;
schemathesis generates, sends (its own HTTP client) and checks in a worker thread, so it talks
to the app over a socket like any client, and the checks that send requests of their own
(ignored auth, unsupported methods) reach it too.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import Any

import anyio
import pytest
import requests
import schemathesis
import uvicorn
from fastapi import FastAPI
from httpx import AsyncClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import RejectedPositiveData

from app.users.schemas import UserCreate
from app.users.service import create_user
from tests.conftest import PASSWORD, Login, SignUp

# The currency tool calls an exchange-rate service: a loopback one here, never the internet.
from tests.tools.conftest import rates_service  # noqa: F401

# Cases per operation and generation mode; every case is sent once per identity.
MAX_EXAMPLES = 10
MIN_CASES = 1000

NewIdentity = Callable[[], Awaitable[dict[str, str]]]

# `format: email` is what email-validator accepts, which refuses the special-use domains of
# RFC 6761 (`.test`, `.invalid`, `.localhost`): a schema cannot say so, the generator is told.
schemathesis.openapi.format(
    "email",
    st.emails(domains=st.sampled_from(["example.com", "mail.example.org", "example.net"])),
)


# Known gap, in flight: `expose` documents a tool's Decimal argument as any string (Pydantic's
# schema for Decimal) while it accepts only decimals. Remove once the tools' decimals are
# documented as they are validated (the expose package's work).
KNOWN_GAP_PREFIX = "/api/v1/tools/"


def refused_by_a_rule(failure: Exception, case: Case[Any], response: Any) -> bool:
    """A schema-valid request refused by a rule no schema states is not a documentation bug:
    a 400 or 422 with a code of its own (a balance too low for the amount, an opaque cursor
    that does not decode, paying oneself), or a
    `validation_error` whose every error is one of our validators' `value_error`s (a card's
    check digit, exactly one payee). A 422 for a type or a bound is a real mismatch."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code not in (400, 422):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    if body.get("code") != "validation_error":
        return bool(body.get("code")) and body.get("code") != "bad_request"
    types = {error.get("type", "") for error in body.get("errors") or [{}]}
    if types == {"value_error"}:
        return True
    return case.path.startswith(KNOWN_GAP_PREFIX) and all(t.startswith("decimal_") for t in types)


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The running app behind uvicorn on a free loopback port (its lifespan is the fixture's)."""
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            async with asyncio.timeout(30):
                while not server.started:
                    if task.done():
                        task.result()
                    await asyncio.sleep(0.01)
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            with suppress(asyncio.CancelledError):
                await task


def generate_cases(raw_schema: dict[str, Any], base_url: str) -> list[Case[Any]]:
    schema = schemathesis.openapi.from_dict(raw_schema)
    schema.config.update(base_url=base_url)
    cases: list[Case[Any]] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # a schema error is a failure, not a skip
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,  # the same cases every run: a failure reproduces
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def collect(case: Case[Any]) -> None:
                cases.append(case)

            try:
                collect()
            except Unsatisfiable:
                # An operation without parameters or body has no invalid input to make.
                if mode is GenerationMode.POSITIVE:
                    raise
    return cases


def signed_in(base_url: str, headers: dict[str, str]) -> bool:
    return bool(requests.get(f"{base_url}/api/v1/users/me", headers=headers, timeout=60).ok)


def run_cases(
    cases: list[Case[Any]], base_url: str, identities: dict[str, NewIdentity]
) -> tuple[dict[int, int], list[str]]:
    """Send every case as every identity and run all checks; the failures, one line each.

    A case may end its identity's session (a superuser deactivating or deleting itself, a
    password change): then a new account of the same kind takes over, so the fuzzing keeps
    reaching past authentication."""
    statuses: dict[int, int] = {}
    by_identity: dict[tuple[str, int], int] = {}
    failures: list[str] = []
    for name, new_identity in identities.items():
        headers = anyio.from_thread.run(new_identity)
        for case in cases:
            response = case.call(base_url=base_url, headers=headers, timeout=60)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            by_identity[name, response.status_code] = (
                by_identity.get((name, response.status_code), 0) + 1
            )
            if "x-request-id" not in response.headers:
                failures.append(f"{name} {case.method} {case.path}: no X-Request-ID")
            try:
                case.validate_response(response, headers=headers)
            except FailureGroup as group:
                for failure in group.exceptions:
                    if refused_by_a_rule(failure, case, response):
                        continue
                    failures.append(
                        f"{name} {case.method} {case.formatted_path} -> {response.status_code}: "
                        f"{failure.title}: {failure.message}"[:300]
                        + f" | sent {case.body!r:.200} {case.query!r:.100}"
                        + f" | got {response.text:.300}"
                    )
            except AssertionError as error:
                failures.append(f"{name} {case.method} {case.path}: {error}"[:600])
            if response.status_code == 401 and not signed_in(base_url, headers):
                by_identity[name, 0] = by_identity.get((name, 0), 0) + 1  # 0: new accounts
                headers = anyio.from_thread.run(new_identity)
    print(f"schemathesis statuses by identity: {sorted(by_identity.items())}")
    return statuses, failures


@pytest.mark.usefixtures("rates_service")
async def test_every_operation_conforms_to_its_documentation(
    client: AsyncClient, app: FastAPI, served: str, sign_up: SignUp, login: Login
) -> None:
    started = time.monotonic()
    raw_schema = (await client.get("/openapi.json")).json()
    cases = await anyio.to_thread.run_sync(generate_cases, raw_schema, served)
    operations = {f"{case.method} {case.path}" for case in cases}
    assert len(operations) == sum(len(methods) for methods in raw_schema["paths"].values())

    async def new_user() -> dict[str, str]:
        return await login((await sign_up())["email"])

    async def new_superuser() -> dict[str, str]:
        email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        async with app.state.db.sessionmaker() as session:
            await create_user(
                session,
                UserCreate(email=email, password=PASSWORD, name="Admin"),
                app.state.password_hasher,
                is_superuser=True,
            )
        return await login(email)

    identities: dict[str, NewIdentity] = {"user": new_user, "superuser": new_superuser}
    statuses, failures = await anyio.to_thread.run_sync(run_cases, cases, served, identities)

    sent = sum(statuses.values())
    print(f"schemathesis: {sent} cases in {time.monotonic() - started:.0f} s: {statuses}")
    assert sent >= MIN_CASES
    assert not failures, "\n".join(sorted(set(failures)))
    # The tokens worked: the fuzzer reached past authentication.
    assert any(200 <= status < 300 for status in statuses), statuses
