"""One app, four ways to call a slow HTTP upstream from `async def`, and an unrelated /ping.

- /call/requests: `requests.get` straight in `async def` (the mistake: blocks the event loop);
- /call/executor: `loop.run_in_executor(None, requests.get, ...)` (the seed's band-aid);
- /call/to_thread: `anyio.to_thread.run_sync(requests.get, ..., limiter=CapacityLimiter(10))`;
- /call/httpx: `await client.get(...)` on one shared `httpx.AsyncClient` (ours).

A task started in the lifespan measures event-loop lag: it asks to sleep 10 ms and records how
late it wakes up. GET /lag returns the samples since the last call (and clears them).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import requests
from fastapi import FastAPI

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:1/slow")
TICK_S = 0.01
LAG_SAMPLES: list[tuple[float, float]] = []
LIMITER = anyio.CapacityLimiter(10)


async def watch_lag() -> None:
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(TICK_S)
        late_ms = (time.perf_counter() - asked - TICK_S) * 1000
        LAG_SAMPLES.append((time.time(), round(late_ms, 2)))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    watcher = asyncio.create_task(watch_lag())
    async with httpx.AsyncClient(timeout=30) as client:
        app.state.client = client
        yield
    watcher.cancel()


app = FastAPI(lifespan=lifespan)


@app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


@app.get("/call/requests")
async def call_requests() -> dict[str, int]:
    # The mistake under test: a blocking call on the event loop.
    return {"status": requests.get(UPSTREAM, timeout=30).status_code}  # noqa: ASYNC210


@app.get("/call/executor")
async def call_executor() -> dict[str, int]:
    loop = asyncio.get_running_loop()
    response = await loop.run_in_executor(None, requests.get, UPSTREAM)
    return {"status": response.status_code}


@app.get("/call/to_thread")
async def call_to_thread() -> dict[str, int]:
    response = await anyio.to_thread.run_sync(requests.get, UPSTREAM, limiter=LIMITER)
    return {"status": response.status_code}


@app.get("/call/httpx")
async def call_httpx() -> dict[str, int]:
    response = await app.state.client.get(UPSTREAM)
    return {"status": response.status_code}


@app.get("/lag")
async def lag() -> list[Any]:
    samples = list(LAG_SAMPLES)
    LAG_SAMPLES.clear()
    return samples
