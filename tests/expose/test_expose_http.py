"""`Exposer.expose` over HTTP, the request model: the plain functions of tests/expose/samples.py
served by the app built as production builds it, signed-in requests through the whole stack."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.core.settings import Settings
from app.main import API_PREFIX, create_app
from tests.expose.samples import BASE, SPANS, THREADS, call, samples


@pytest.fixture
def application(settings: Settings) -> FastAPI:
    application = create_app(settings)
    application.include_router(samples.router, prefix=API_PREFIX)
    return application


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
