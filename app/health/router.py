"""Liveness, readiness and Prometheus metrics: outside /api/v1, no auth."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

router = APIRouter(tags=["health"])

# A check that takes longer than this counts as down: a readiness probe must answer quickly.
CHECK_TIMEOUT_SECONDS = 2.0


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    responses={503: {"description": "a dependency is unreachable; `checks` names it"}},
)
async def ready(request: Request) -> JSONResponse:
    checks = {"database": await _check_database(request)}
    if request.app.state.redis is not None:
        checks["redis"] = await _check_redis(request)
    healthy = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
        headers=None if healthy else {"Retry-After": "5"},
    )


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def _check_database(request: Request) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            async with request.app.state.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; the reason goes to the body
        return f"error: {type(exc).__name__}"
    return "ok"


async def _check_redis(request: Request) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await request.app.state.redis.ping()
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"
