"""The in-process rate limiter (no Redis, or while Redis is down) under concurrent use.

limits' MemoryStorage drops expired entries in a background pass that snapshots the keys, then
reads each key's entries after an await: a `clear()` in between (a successful sign-in clears its
failure counters) made that pass raise KeyError in a task nobody awaits, logged as "Task
exception was never retrieved" (seen in tests/faults under load).
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from app.core.ratelimit import RateLimiter

KEYS = 200


async def test_clearing_while_expired_entries_are_dropped_raises_nothing() -> None:
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    limiter = RateLimiter(None, None)
    try:
        for round_ in range(20):
            buckets = [
                limiter.bucket("5/minute", f"key-{round_}-{i}", what="tries") for i in range(KEYS)
            ]
            for bucket in buckets:
                await bucket.hit()  # each schedules the pass if none is running
            # The pass is under way (it awaits a thread per key): clear keys meanwhile.
            for bucket in buckets[::-1]:
                await bucket.clear()
                await asyncio.sleep(0)
        timer = limiter._memory.timer
        if timer is not None:
            await asyncio.gather(timer, return_exceptions=True)
        del timer
        gc.collect()  # an unretrieved task exception is reported when the task is freed
    finally:
        limiter.close()
        loop.set_exception_handler(previous)
    assert unhandled == []
