"""Schemathesis against our own OpenAPI schema: valid and invalid requests to every operation,
with a real user's token, and not one 5xx.

Schemathesis' own ASGI runner (`from_asgi` / `case.call`) drives the app through Starlette's
sync TestClient, in another thread and event loop than the one our engine lives in. So cases
are generated here with schemathesis + hypothesis (in a worker thread: generation is CPU work
that has no place on the event loop), sent with the suite's async client to the app whose
lifespan is running, and each response is checked with schemathesis' `not_a_server_error`.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import schemathesis
from httpx import AsyncClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

# The currency tool calls an exchange-rate service: a loopback one here, never the internet.
from tests.tools.conftest import rates_service  # noqa: F401

MAX_EXAMPLES = 25
BASE_URL = "http://test"


def generate_cases(raw_schema: dict[str, Any]) -> list[Case[Any]]:
    schema = schemathesis.openapi.from_dict(raw_schema)
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


def as_httpx(kwargs: dict[str, Any]) -> dict[str, Any]:
    """requests-style keyword arguments (what schemathesis serializes to) for httpx."""
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": kwargs.get("headers") or {},
        "params": kwargs.get("params"),
        "cookies": kwargs.get("cookies") or None,
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    data = kwargs.get("data")
    if isinstance(data, (bytes, str)):
        request["content"] = data
    elif data is not None:
        request["data"] = data
    if kwargs.get("files"):
        request["files"] = kwargs["files"]
    return request


@pytest.mark.usefixtures("rates_service")
async def test_no_operation_answers_with_a_server_error(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    raw_schema = (await client.get("/openapi.json")).json()
    cases = await anyio.to_thread.run_sync(generate_cases, raw_schema)
    operations = {f"{case.method} {case.path}" for case in cases}
    assert len(operations) == sum(len(methods) for methods in raw_schema["paths"].values())

    statuses: dict[int, int] = {}
    for case in cases:
        kwargs = case.as_transport_kwargs(base_url=BASE_URL)
        # Every request carries a signed-up user's token, so the fuzzing gets past auth.
        kwargs["headers"] = {**(kwargs.get("headers") or {}), **user_headers}
        try:
            request = client.build_request(**as_httpx(kwargs))
            # Multipart bodies are streams: read it, so schemathesis can see what was sent.
            await request.aread()
        except (TypeError, ValueError, AttributeError):
            # A negative case httpx cannot even encode (a number as a multipart file): it
            # could never reach a server, so there is nothing to check.
            continue
        response = await client.send(request)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert "x-request-id" in response.headers
        case.validate_response(response, checks=[not_a_server_error])

    assert not any(status >= 500 for status in statuses)
    # The token worked: the fuzzer reached past authentication.
    assert any(200 <= status < 300 for status in statuses), statuses
