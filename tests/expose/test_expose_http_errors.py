"""`Exposer.expose` over HTTP, what goes wrong: exceptions as problems, injected dependencies,
who may call a tool. The functions are tests/expose/samples.py's."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.core.settings import Settings
from app.main import API_PREFIX, create_app
from tests.expose.samples import BASE, SECRET, call, samples


@pytest.fixture
def application(settings: Settings) -> FastAPI:
    application = create_app(settings)
    application.include_router(samples.router, prefix=API_PREFIX)
    return application


# --- exceptions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code", "detail"),
    [
        ("value", 422, "invalid_arguments", "amount must be positive"),
        ("type", 422, "invalid_arguments", "expected a list"),
        ("lookup", 404, "not_found", "account 42 not found"),
        ("index", 404, "not_found", "no such row"),
        ("key", 410, "gone_for_good", "thing 7"),  # errors= overrides the default 404
        ("permission", 403, "forbidden", "only the owner may do that"),
        ("funds", 402, "insufficient_funds", "balance 3.00 is below 5.00"),
        ("overdrawn", 422, "overdrawn", "overdrawn by 2.00"),
        ("app", 409, "already_done", "already done"),
        ("empty", 422, "invalid_arguments", "invalid arguments"),
    ],
)
async def test_exceptions_become_problems(
    client: AsyncClient,
    user_headers: dict[str, str],
    kind: str,
    status: int,
    code: str,
    detail: str,
) -> None:
    response = await call(client, "fail", user_headers, {"kind": kind})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["code"], problem["detail"]) == (status, code, detail)
    assert problem["request_id"] == response.headers["x-request-id"]


async def test_a_long_message_is_cut(client: AsyncClient, user_headers: dict[str, str]) -> None:
    problem = (await call(client, "fail", user_headers, {"kind": "long"})).json()
    assert len(problem["detail"]) == 500


async def test_a_validation_error_inside_the_function_does_not_echo_its_input(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await call(client, "fail", user_headers, {"kind": "validation"})
    assert response.status_code == 422
    assert SECRET not in response.text
    assert response.json()["errors"][0]["type"] == "int_parsing"


@pytest.mark.parametrize("kind", ["runtime", "zero", "exit"])
async def test_anything_else_is_a_500_that_leaks_nothing(
    client: AsyncClient, user_headers: dict[str, str], kind: str
) -> None:
    response = await call(client, "fail", user_headers, {"kind": kind})
    assert response.status_code == 500
    problem = response.json()
    assert problem["code"] == "internal_error"
    assert problem["detail"] == "internal server error"
    assert SECRET not in response.text
    assert "Traceback" not in response.text
    # The server keeps serving.
    assert (await call(client, "add", user_headers, {"a": 1})).status_code == 200


# --- injection ------------------------------------------------------------------------------


async def test_dependencies_are_injected_not_read_from_the_body(
    client: AsyncClient, app: FastAPI, sign_up: Any, login: Any
) -> None:
    user = await sign_up(email="injected@example.com")
    headers = await login(user["email"])
    response = await call(client, "whoami", headers, {"note": "hi"})
    assert response.status_code == 200, response.text
    assert response.json()["result"] == {
        "user_id": user["id"],
        "email": "injected@example.com",
        "db": 1,
        "http_client_id": id(app.state.http),  # the shared client, not a new one
        "currency": "USD",
        "note": "hi",
    }
    assert (await call(client, "sync_who", headers)).json() == {
        "result": "injected@example.com/USD"
    }
    # What is injected cannot be sent: it is not part of the body.
    for field in ("user", "session", "http", "settings"):
        sneaky = await call(client, "whoami", headers, {"note": "hi", field: {"id": 1}})
        assert sneaky.status_code == 422, field
        assert sneaky.json()["errors"][0]["type"] == "extra_forbidden"


# --- auth, unknown tools, listing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("GET", BASE), ("POST", f"{BASE}/add"), ("POST", f"{BASE}/nothing")]
)
async def test_tools_are_for_signed_in_users_only(
    client: AsyncClient, method: str, path: str
) -> None:
    anonymous = await client.request(method, path, json={"a": 1})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    forged = await client.request(
        method, path, json={"a": 1}, headers={"Authorization": "Bearer not.a.token"}
    )
    assert forged.status_code == 401
    assert forged.json()["code"] == "invalid_token"


async def test_an_unknown_tool_is_a_404(client: AsyncClient, user_headers: dict[str, str]) -> None:
    response = await call(client, "no_such_tool", user_headers, {})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


async def test_the_list_shows_every_tool_with_its_schemas(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.get(BASE, headers=user_headers)
    assert response.status_code == 200
    tools = {tool["name"]: tool for tool in response.json()["items"]}
    assert set(tools) == set(samples.tools)
    add_tool = tools["add"]
    assert add_tool["path"] == f"{BASE}/add"
    assert add_tool["summary"] == "Add two integers."
    assert add_tool["description"] == "Longer explanation of adding."
    assert add_tool["long_running"] is False
    assert add_tool["input_schema"]["required"] == ["a"]
    assert add_tool["input_schema"]["additionalProperties"] is False
    assert add_tool["input_schema"]["properties"]["a"]["description"] == "The first term."
    assert add_tool["input_schema"]["properties"]["b"]["default"] == 2
    assert add_tool["output_schema"] == {"type": "integer"}
    assert tools["greet"]["output_schema"]["properties"]["adult"] == {
        "title": "Adult",
        "type": "boolean",
    }
    # Injected parameters are not inputs.
    assert set(tools["whoami"]["input_schema"]["properties"]) == {"note"}
    assert set(tools["shadowing"]["input_schema"]["properties"]) == {"json", "schema", "_private"}
