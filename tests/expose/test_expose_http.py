"""`Exposer.expose` over HTTP: plain functions of this module served by the app built as
production builds it, signed-in requests through the whole stack."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict
from app.core.settings import Settings
from app.main import API_PREFIX, create_app
from app.tools.router import make_exposer
from app.users.models import User
from tests.conftest import make_settings

samples = make_exposer(prefix="/samples", kind_prefix="test_expose_http")
BASE = f"{API_PREFIX}/samples"
SECRET = "s3cr3t-connection-string-postgres://admin:hunter2@db"
THREADS: dict[str, int] = {}


class InsufficientFunds(Exception):
    pass


class Overdrawn(ValueError):
    pass


@dataclass
class Rectangle:
    width: float
    height: float


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    age: int = Field(ge=0)


class Greeting(BaseModel):
    text: str
    adult: bool


@samples.expose
def add(a: int, b: int = 2) -> int:
    """Add two integers.

    Longer explanation of adding.

    Args:
        a: The first term.
        b: The second term.

    Returns:
        The sum.
    """
    THREADS["add"] = threading.get_ident()
    return a + b


@samples.expose
async def add_async(a: int, b: int) -> int:
    """Add, asynchronously."""
    THREADS["add_async"] = threading.get_ident()
    return a + b


@samples.expose
def scale(factor: Annotated[float, Field(gt=0, le=10)], values: list[Decimal]) -> list[Decimal]:
    """Multiply every value."""
    return [v * Decimal(str(factor)) for v in values]


@samples.expose
def area(rectangle: Rectangle) -> Rectangle:
    """Echo a rectangle (a dataclass in and out)."""
    return Rectangle(rectangle.width * 2, rectangle.height * 2)


@samples.expose(name="greet")
def make_greeting(person: Person, polite: bool = True) -> Greeting:
    """Greet a person (a Pydantic model in and out)."""
    return Greeting(text=("Good day, " if polite else "Hi ") + person.name, adult=person.age >= 18)


@samples.expose
def nothing() -> None:
    """Take nothing, return nothing."""


@samples.expose
def shadowing(json: str, /, schema: int = 1, _private: str = "x") -> str:
    """Parameter names that shadow BaseModel's, positional-only, and underscored."""
    return f"{json}:{schema}:{_private}"


@samples.expose(
    errors={
        InsufficientFunds: 402,
        Conflict: 418,  # ignored: an AppError is already a problem
        KeyError: (410, "gone_for_good"),
    }
)
def fail(kind: str) -> str:
    """Raise what `kind` says.

    Raises:
        InsufficientFunds: The balance is too low.
    """
    errors: dict[str, BaseException] = {
        "value": ValueError("amount must be positive"),
        "type": TypeError("expected a list"),
        "lookup": LookupError("account 42 not found"),
        "index": IndexError("no such row"),
        "key": KeyError("thing 7"),
        "permission": PermissionError("only the owner may do that"),
        "funds": InsufficientFunds("balance 3.00 is below 5.00"),
        "overdrawn": Overdrawn("overdrawn by 2.00"),
        "app": Conflict("already done", code="already_done"),
        "runtime": RuntimeError(SECRET),
        "zero": ZeroDivisionError(SECRET),
        "validation": _validation_error(),
        "empty": ValueError(),
        "long": ValueError("x" * 5000),
        "exit": SystemExit(3),
    }
    raise errors[kind]


def _validation_error() -> Exception:
    try:
        TypeAdapter(int).validate_python(SECRET)
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


@samples.expose
async def whoami(
    user: User, session: AsyncSession, http: httpx.AsyncClient, settings: Settings, note: str
) -> dict[str, Any]:
    """Everything injected, plus one argument from the body."""
    one = await session.scalar(text("SELECT 1"))
    return {
        "user_id": user.id,
        "email": user.email,
        "db": one,
        "http_client_id": id(http),
        "currency": settings.currency,
        "note": note,
    }


@samples.expose
def sync_who(user: User, settings: Settings) -> str:
    """A sync function may take the caller and settings (plain objects)."""
    return f"{user.email}/{settings.currency}"


SPANS: list[tuple[int, int]] = []


def ordered(low: int, high: int) -> None:
    if high < low:
        raise ValueError("high is below low")


@samples.expose(check=ordered)
def span(low: int = 0, high: int = 10) -> int:
    """The width of a range; its check refuses a range that ends before it starts."""
    SPANS.append((low, high))
    return high - low


@samples.expose(check=ordered)
def empty_span(low: int = 1, high: int = 0) -> int:
    """Defaults its check refuses."""
    SPANS.append((low, high))
    return high - low


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, storage_dir=tmp_path / "files")


@pytest.fixture
def application(settings: Settings) -> FastAPI:
    application = create_app(settings)
    application.include_router(samples.router, prefix=API_PREFIX)
    return application


async def call(
    client: AsyncClient, name: str, headers: dict[str, str], body: Any = None, **kw: Any
) -> httpx.Response:
    if body is None:
        return await client.post(f"{BASE}/{name}", headers=headers, **kw)
    return await client.post(f"{BASE}/{name}", json=body, headers=headers, **kw)


# --- the request model ----------------------------------------------------------------------


async def test_arguments_come_from_the_signature(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await call(client, "add", user_headers, {"a": 40, "b": 2})
    assert response.status_code == 200, response.text
    assert response.json() == {"result": 42}
    # A default applies when the argument is left out; "5" is coerced as FastAPI would.
    assert (await call(client, "add", user_headers, {"a": "5"})).json() == {"result": 7}


@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        ({"a": "forty"}, ["body", "a"], "int_parsing"),
        ({"b": 1}, ["body", "a"], "missing"),
        ({"a": 1, "c": 3}, ["body", "c"], "extra_forbidden"),
        ([1, 2], ["body"], "model_attributes_type"),
    ],
)
async def test_bad_arguments_are_a_422_problem(
    client: AsyncClient, user_headers: dict[str, str], body: Any, loc: list[Any], error_type: str
) -> None:
    response = await call(client, "add", user_headers, body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert {"loc": loc, "type": error_type} in [
        {"loc": e["loc"], "type": e["type"]} for e in problem["errors"]
    ], problem


async def test_a_body_that_is_not_json_is_a_422(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.post(
        f"{BASE}/add",
        content=b"{not json",
        headers={**user_headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_a_required_body_cannot_be_left_out(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await call(client, "add", user_headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "missing"


async def test_a_function_without_required_arguments_needs_no_body(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    assert (await call(client, "nothing", user_headers)).json() == {"result": None}
    assert (await call(client, "nothing", user_headers, {})).json() == {"result": None}
    unknown = await call(client, "nothing", user_headers, {"surprise": 1})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["type"] == "extra_forbidden"


async def test_a_check_refuses_arguments_before_the_function_runs(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    SPANS.clear()
    refused = {"loc": ["body"], "msg": "Value error, high is below low", "type": "value_error"}
    for body in ({"low": 5, "high": 1}, {"low": 11}):
        response = await call(client, "span", user_headers, body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert (response.json()["code"], response.json()["errors"]) == (
            "validation_error",
            [refused],
        )
    # With no body at all the defaults are checked too: a 422, not a 500.
    response = await call(client, "empty_span", user_headers)
    assert (response.status_code, response.json()["errors"]) == (422, [refused])
    assert SPANS == []
    assert (await call(client, "span", user_headers, {"low": 3})).json() == {"result": 7}
    assert SPANS == [(3, 10)]


async def test_annotated_field_constraints_apply(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    ok = await call(client, "scale", user_headers, {"factor": 2, "values": ["1.25", 3]})
    assert ok.json() == {"result": ["2.500", "6.0"]}
    for factor in (0, -1, 10.5):
        response = await call(client, "scale", user_headers, {"factor": factor, "values": []})
        assert response.status_code == 422, factor
        assert response.json()["errors"][0]["loc"] == ["body", "factor"]


async def test_dataclass_parameters_and_results(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await call(client, "area", user_headers, {"rectangle": {"width": 2, "height": 3}})
    assert response.json() == {"result": {"width": 4.0, "height": 6.0}}
    extra = await call(
        client, "area", user_headers, {"rectangle": {"width": 2, "height": 3, "depth": 1}}
    )
    assert extra.status_code == 422
    assert extra.json()["errors"][0]["loc"] == ["body", "rectangle", "depth"]
    wrong = await call(client, "area", user_headers, {"rectangle": {"width": "wide"}})
    assert wrong.status_code == 422


async def test_model_parameters_and_results(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await call(client, "greet", user_headers, {"person": {"name": "Ada", "age": 36}})
    assert response.json() == {"result": {"text": "Good day, Ada", "adult": True}}
    casual = await call(
        client, "greet", user_headers, {"person": {"name": "Kid", "age": 9}, "polite": False}
    )
    assert casual.json() == {"result": {"text": "Hi Kid", "adult": False}}
    bad = await call(client, "greet", user_headers, {"person": {"name": "", "age": -1}})
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["errors"]} == {
        ("body", "person", "name"),
        ("body", "person", "age"),
    }


async def test_names_that_shadow_basemodel_and_positional_only_parameters(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await call(
        client, "shadowing", user_headers, {"json": "j", "schema": 5, "_private": "p"}
    )
    assert response.json() == {"result": "j:5:p"}
    assert (await call(client, "shadowing", user_headers, {"json": "j"})).json() == {
        "result": "j:1:x"
    }


# --- sync in a thread, async on the loop ----------------------------------------------------


async def test_sync_functions_run_in_a_worker_thread_async_ones_on_the_loop(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    loop_thread = threading.get_ident()
    assert (await call(client, "add", user_headers, {"a": 1})).status_code == 200
    assert (await call(client, "add_async", user_headers, {"a": 1, "b": 1})).status_code == 200
    assert THREADS["add"] != loop_thread
    assert THREADS["add_async"] == loop_thread


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
