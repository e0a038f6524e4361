"""`Exposer` at definition time: what cannot be exposed is refused with the function and the
parameter named; docstrings become documentation; the OpenAPI document it adds validates."""

from __future__ import annotations

import copy
import socket
import sys
import types
from collections.abc import Iterator
from typing import Annotated, Any

import anyio
import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.settings import Settings
from app.expose import ExposeError, Exposer, parse_docstring, public_functions
from app.main import API_PREFIX
from app.tools.router import make_exposer
from app.users.models import User


class Opaque:
    """Not something JSON can carry."""


def fresh() -> Exposer:
    return Exposer(prefix="/t", kind_prefix="test_expose_definitions")


def no_hint(a, b: int) -> int:  # type: ignore[no-untyped-def]
    return b


def star_args(*numbers: int) -> int:
    return sum(numbers)


def star_kwargs(a: int, **options: int) -> int:
    return a


def opaque_return(a: int) -> Opaque:
    return Opaque()


def socket_return() -> socket.socket:
    raise NotImplementedError


def opaque_param(thing: Opaque) -> int:
    return 1


def no_return(a: int):  # type: ignore[no-untyped-def]
    return a


def fine(a: int) -> int:
    return a


def numbers() -> Iterator[int]:
    yield 1


def wants_session(session: AsyncSession) -> int:
    return 1


def wants_client(http: httpx.AsyncClient) -> int:
    return 1


def checks_b(b: int) -> None:
    pass


async def checks_async(a: int) -> None:
    pass


def unresolvable(a: NoSuchType) -> int:  # type: ignore[name-defined]  # noqa: F821
    return 1


@pytest.mark.parametrize(
    ("func", "kwargs", "message"),
    [
        (no_hint, {}, "no_hint, parameter 'a': has no type hint"),
        (star_args, {}, "star_args, parameter 'numbers': *args cannot be exposed"),
        (star_kwargs, {}, "star_kwargs, parameter 'options': **kwargs cannot be exposed"),
        (opaque_return, {}, "opaque_return: return type"),
        (socket_return, {}, "socket_return: return type"),
        (opaque_param, {}, "opaque_param, parameter 'thing': type"),
        (no_return, {}, "no_return: has no return annotation"),
        (numbers, {}, "numbers: generators cannot be exposed"),
        (wants_session, {}, "wants_session, parameter 'session': a database session can only"),
        (wants_client, {}, "wants_client, parameter 'http': a HTTP client can only"),
        (unresolvable, {}, "unresolvable: its type hints cannot be resolved"),
        (Opaque, {}, "only functions can be exposed"),
        (star_args, {"name": "has space"}, "tool name 'has space' must be"),
        (star_args, {"name": "9lives"}, "tool name '9lives' must be"),
        (
            opaque_param,
            {"long_running": True},
            "long_running needs an Exposer made with job_schema",
        ),
        (fine, {"errors": {"oops": 400}}, "errors keys must be exception classes"),
        (fine, {"errors": {KeyError: 200}}, "must be a 4xx or 5xx status"),
        (fine, {"check": checks_b}, "check 'checks_b' takes b, which the request body does not"),
        (fine, {"check": checks_async}, "check must be a plain def"),
    ],
)
def test_what_cannot_be_exposed_is_refused_with_names(
    func: Any, kwargs: dict[str, Any], message: str
) -> None:
    exposer = fresh()
    with pytest.raises(ExposeError) as caught:
        exposer.expose(func, **kwargs)
    text = str(caught.value)
    assert message in text
    if isinstance(func, types.FunctionType):
        assert f"{__name__}.{func.__qualname__}" in text
    # Nothing half-registered: no route, no tool.
    assert exposer.tools == {}
    assert [r.path for r in exposer.router.routes] == ["/t"]  # type: ignore[attr-defined]


def test_a_name_is_exposed_once() -> None:
    exposer = fresh()

    def ping() -> str:
        return "pong"

    exposer.expose(ping)
    with pytest.raises(ExposeError, match="a tool named 'ping' is already exposed"):
        exposer.expose(ping)
    exposer.expose(ping, name="ping_again")
    assert set(exposer.tools) == {"ping", "ping_again"}


def test_expose_returns_the_function_unchanged_as_a_decorator_too() -> None:
    exposer = fresh()

    def double(x: int) -> int:
        return 2 * x

    assert exposer.expose(double) is double

    @exposer.expose(name="triple")
    def triple(x: int) -> int:
        return 3 * x

    assert triple(2) == 6
    assert set(exposer.tools) == {"double", "triple"}


def test_sync_functions_may_take_settings_and_the_caller() -> None:
    exposer = make_exposer(prefix="/t", kind_prefix="test_expose_definitions")

    def mine(user: User, settings: Settings, x: int) -> str:
        return ""

    exposer.expose(mine)
    tool = exposer.tools["mine"].signature
    assert tool.caller_params == ["user"]
    assert list(tool.injected) == ["settings"]
    assert list(tool.arguments_model.model_fields) == ["x"]


def test_google_style_docstrings() -> None:
    def documented(a: int, b: str) -> int:
        """Do the thing
        in one sentence.

        More prose, kept as the description.

        Args:
            a: The first one,
                on two lines.
            b (str): The second.

        Returns:
            A number.

        Raises:
            ValueError: When a is negative.
        """
        return a

    docs = parse_docstring(documented)
    assert docs.summary == "Do the thing in one sentence."
    assert docs.description == "More prose, kept as the description."
    assert docs.params == {"a": "The first one, on two lines.", "b": "The second."}
    assert docs.returns == "A number."
    assert docs.raises == {"ValueError": "When a is negative."}


def test_rest_style_docstrings_and_none() -> None:
    def rest(a: int) -> int:
        """Summary.

        :param a: The a.
        :returns: The result.
        :raises KeyError: When missing.
        """
        return a

    docs = parse_docstring(rest)
    assert (docs.summary, docs.params, docs.returns) == ("Summary.", {"a": "The a."}, "The result.")
    assert docs.raises == {"KeyError": "When missing."}

    def bare(a: int) -> int:
        return a

    assert parse_docstring(bare).summary == ""


def test_field_descriptions_from_annotated_win_over_the_docstring() -> None:
    exposer = fresh()

    def f(a: Annotated[int, Field(ge=0, description="from Field")], b: int = 3) -> int:
        """F.

        Args:
            a: from the docstring
            b: bee
        """
        return a

    exposer.expose(f)
    schema = exposer.tools["f"].signature.input_schema
    assert schema["properties"]["a"]["description"] == "from Field"
    assert schema["properties"]["a"]["minimum"] == 0
    assert schema["properties"]["b"] == {
        "default": 3,
        "description": "bee",
        "title": "B",
        "type": "integer",
    }


def test_public_functions_of_a_module() -> None:
    module = types.ModuleType("sample_public")
    exec(  # noqa: S102 - a module built for this test
        "from os.path import join\n"
        "def second(x: int) -> int:\n    return x\n"
        "def _hidden(x: int) -> int:\n    return x\n"
        "def first(x: int) -> int:\n    return x\n"
        "value = 3\n",
        module.__dict__,
    )
    assert list(public_functions(module)) == ["second", "first"]  # source order, no import


def test_expose_module_names_what_it_cannot_find(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("sample_for_expose_module")
    exec("def one(x: int) -> int:\n    return x\n", module.__dict__)  # noqa: S102
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exposer = fresh()
    with pytest.raises(ExposeError, match="has no public function named two"):
        exposer.expose_module(module.__name__, names=["two"])
    assert exposer.expose_module(module.__name__).exposed == ["one"]
    with pytest.raises(ModuleNotFoundError):
        exposer.expose_module("no.such.module")


async def test_the_openapi_document_validates_and_documents_each_tool(app: FastAPI) -> None:
    document = app.openapi()
    # Against the OpenAPI 3.1 meta-schema (schemathesis reads its config files: a thread). The
    # auth scheme's relative tokenUrl is the one thing the meta-schema's strict "uri" format
    # refuses (not the tools' doing: OpenAPI 3.1 allows a URL relative to the server), so the
    # copy validated here makes it absolute.
    checked = copy.deepcopy(document)
    for scheme in checked["components"]["securitySchemes"].values():
        for flow in scheme.get("flows", {}).values():
            flow["tokenUrl"] = "http://test" + flow["tokenUrl"]
    await anyio.to_thread.run_sync(lambda: schemathesis.openapi.from_dict(checked).validate())

    prefix = f"{API_PREFIX}/tools"
    operation = document["paths"][f"{prefix}/amortisation_schedule"]["post"]
    assert operation["summary"].startswith("Monthly payments of a fixed-rate loan")
    assert "rounded to the cent" in operation["description"]
    assert operation["security"] == [{"OAuth2PasswordBearer": []}]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    arguments = document["components"]["schemas"][body.rsplit("/", 1)[1]]
    assert arguments["additionalProperties"] is False
    assert arguments["properties"]["months"]["maximum"] == 600
    assert "percent" in arguments["properties"]["annual_rate"]["description"]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    result = document["components"]["schemas"][ok.rsplit("/", 1)[1]]
    assert list(result["properties"]) == ["result"]
    for status in ("401", "422"):
        assert "application/problem+json" in operation["responses"][status]["content"]

    currency = document["paths"][f"{prefix}/convert_currency"]["post"]
    unavailable = currency["responses"]["503"]
    assert unavailable["content"]["application/problem+json"]["example"]["code"] == (
        "rates_unavailable"
    )
    assert "RatesUnavailable" in unavailable["description"]
    assert "http" not in str(currency["requestBody"])  # injected, not an input

    statement = document["paths"][f"{prefix}/account_statement"]["post"]
    assert "202" in statement["responses"]
    assert "200" not in statement["responses"]
    assert "Long-running" in statement["description"]
