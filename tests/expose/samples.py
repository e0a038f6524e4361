"""Plain functions served as tools for the HTTP tests of `Exposer.expose`
(test_expose_http.py, test_expose_http_errors.py), and the helper that calls them."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import httpx
from httpx import AsyncClient
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict
from app.core.settings import Settings
from app.main import API_PREFIX
from app.tools.router import make_exposer
from app.users.models import User

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


async def call(
    client: AsyncClient, name: str, headers: dict[str, str], body: Any = None, **kw: Any
) -> httpx.Response:
    if body is None:
        return await client.post(f"{BASE}/{name}", headers=headers, **kw)
    return await client.post(f"{BASE}/{name}", json=body, headers=headers, **kw)
