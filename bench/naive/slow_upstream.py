"""A slow upstream on 127.0.0.1: every GET /slow answers after 100 ms, without blocking."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

UPSTREAM_DELAY_S = 0.1
app = FastAPI()


@app.get("/slow")
async def slow() -> dict[str, bool]:
    await asyncio.sleep(UPSTREAM_DELAY_S)
    return {"ok": True}
