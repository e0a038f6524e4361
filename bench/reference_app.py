"""The raw-asyncpg reference: GET /api/v1/users/me doing the service's work with no ORM.

Per request: read the bearer header, decode the JWT with PyJWT (HS256, the same secret and the
same required claims as `app.core.security.decode_access_token`), one `pool.fetchrow` by primary
key, 401 if missing or inactive, and the same JSON shape as `UserRead` through a Pydantic
response model. It is the yardstick the service is measured against (target: service >= 0.5x).

Configured by environment: BENCH_REFERENCE_DSN (a plain postgresql:// DSN) and SECRET_KEY.
Run: uvicorn bench.reference_app:app --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import asyncpg  # type: ignore[import-untyped]
import jwt
from fastapi import Depends, FastAPI, HTTPException, Request, status
from pydantic import BaseModel

SECRET = os.environ["SECRET_KEY"]
DSN = os.environ["BENCH_REFERENCE_DSN"]
CURRENCY = "USD"

QUERY = (
    "SELECT id, email, name, age, is_active, is_superuser, balance_minor, created_at, updated_at "
    "FROM users WHERE id = $1"
)


class UserRead(BaseModel):
    """The service's `UserRead`, copied so the reference does not import the app."""

    id: int
    email: str
    name: str
    age: int | None
    is_active: bool
    is_superuser: bool
    balance: str
    currency: str
    created_at: datetime
    updated_at: datetime


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # A fixed pool of 10: the service's steady-state pool size (DB_POOL_SIZE), no overflow.
    pool = await asyncpg.create_pool(DSN, min_size=10, max_size=10)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(
    lifespan=lifespan,
    # The same as app/main.py: FastAPI's built-in OpenTelemetry hooks off.
    telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
)


def _unauthorized() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "token is invalid or expired",
        headers={"WWW-Authenticate": "Bearer"},
    )


def user_id_from_token(request: Request) -> int:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            options={"require": ["exp", "iat", "sub", "type"]},
            leeway=5,
        )
    except jwt.PyJWTError as exc:
        raise _unauthorized() from exc
    subject = claims["sub"]
    if claims.get("type") != "access" or not (isinstance(subject, str) and subject.isdigit()):
        raise _unauthorized()
    return int(subject)


@app.get("/api/v1/users/me")
async def read_me(
    request: Request, user_id: Annotated[int, Depends(user_id_from_token)]
) -> UserRead:
    row = await request.app.state.pool.fetchrow(QUERY, user_id)
    if row is None or not row["is_active"]:
        raise _unauthorized()
    return UserRead(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        age=row["age"],
        is_active=row["is_active"],
        is_superuser=row["is_superuser"],
        balance=f"{Decimal(row['balance_minor']) / 100:.2f}",
        currency=CURRENCY,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
