"""Three twins of one endpoint (one `SELECT 1` through SQLAlchemy async), differing only in the
engine's lifecycle, chosen by BENCH_LIFECYCLE_MODE:
- `per_request`: a new engine in the dependency for every request, never disposed (naive);
- `at_import`: one engine created when the module is imported, never disposed (naive);
- `lifespan`: one engine made in the lifespan, pool 10 + 20 overflow (the seed's
  settings), disposed at shutdown (ours).
The route is /api/v1/users/me so bench/users_me.lua drives it; it ignores the token.
Sessions are tagged with application_name so the harness counts them in pg_stat_activity."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

MODE = os.environ.get("BENCH_LIFECYCLE_MODE", "lifespan")
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+asyncpg://127.0.0.1:1/x")
CONNECT_ARGS = {"server_settings": {"application_name": f"bench-lifecycle-{MODE}"}}
# The same pool for all three (the seed's lifespan settings): only where it lives differs.
POOL = {"pool_size": 10, "max_overflow": 20}

engine_at_import: AsyncEngine | None = None
if MODE == "at_import":
    engine_at_import = create_async_engine(DATABASE_URL, connect_args=CONNECT_ARGS, **POOL)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if MODE != "lifespan":
        yield
        return
    # The seed's lifespan settings; no pre-ping (as the service): the twins differ only in
    # where the engine lives and whether it is disposed.
    engine = create_async_engine(DATABASE_URL, connect_args=CONNECT_ARGS, **POOL)
    app.state.engine = engine
    try:
        yield
    finally:
        await engine.dispose()


app = FastAPI(lifespan=lifespan)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    if MODE == "per_request":
        engine = create_async_engine(DATABASE_URL, connect_args=CONNECT_ARGS, **POOL)
    elif MODE == "at_import":
        assert engine_at_import is not None
        engine = engine_at_import
    else:
        engine = request.app.state.engine
    async with AsyncSession(engine) as session:
        yield session


@app.get("/api/v1/users/me")
async def read(session: Annotated[AsyncSession, Depends(get_session)]) -> dict[str, int]:
    return {"one": (await session.execute(text("SELECT 1"))).scalar_one()}
