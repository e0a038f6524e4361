"""`GET /`: where a newcomer's browser or curl lands first, pointing at everything else."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(tags=["health"])

API_ROOT = "/api/v1"


@router.get("/", summary="Links to the docs, health checks and the API")
@router.get(
    API_ROOT, summary="Links to the docs, health checks and the API", include_in_schema=False
)
async def index(request: Request) -> dict[str, Any]:
    return {
        "name": request.app.title,
        "version": request.app.version,
        "links": {
            "docs": "/docs",
            "redoc": "/redoc",
            "openapi": "/openapi.json",
            "health_live": "/health/live",
            "health_ready": "/health/ready",
            "metrics": "/metrics",
            "api": API_ROOT,
        },
    }
