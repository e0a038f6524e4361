"""Rate limits with the `limits` library: in process memory by default, in Redis when
REDIS_URL is set (so every worker process shares one count).

Used for login failures. Per email, `acquire()` takes a unit atomically before the password is
checked and `clear()` gives the allowance back after a correct one, so parallel guesses cannot
outrun the count. Per client, `check()` before the attempt and `hit()` after a failure. A moving
window, so a burst at a window edge cannot double the allowance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from app.core.errors import TooManyRequests


class RateLimiter:
    def __init__(self, redis: Redis | None, redis_url: str | None) -> None:
        if redis is not None and redis_url:
            # Shares the app's Redis pool, which the lifespan closes.
            self.storage: Storage = RedisStorage(
                f"async+{redis_url}",
                implementation="redispy",
                # limits types its options as scalars; redis-py's Redis() takes the pool as is.
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]
            )
        else:
            self.storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self.storage)

    async def check(self, rules: Sequence[tuple[RateLimitItem, str]], *, what: str) -> None:
        """Raise 429 with Retry-After when any (rule, key) has no allowance left."""
        for rule, key in rules:
            if not await self._limiter.test(rule, key):
                raise await self._too_many(rule, key, what)

    async def acquire(self, rule: RateLimitItem, key: str, *, what: str) -> None:
        """Take one unit now, atomically, or raise 429. Unlike check() then hit(), a burst of
        concurrent requests cannot all pass before any of them is counted."""
        if not await self._limiter.hit(rule, key):
            raise await self._too_many(rule, key, what)

    async def hit(self, rules: Sequence[tuple[RateLimitItem, str]]) -> None:
        for rule, key in rules:
            await self._limiter.hit(rule, key)

    async def clear(self, rule: RateLimitItem, key: str) -> None:
        await self._limiter.clear(rule, key)

    async def _too_many(self, rule: RateLimitItem, key: str, what: str) -> TooManyRequests:
        stats = await self._limiter.get_window_stats(rule, key)
        retry_after = math.ceil(stats.reset_time - time.time())
        return TooManyRequests(
            f"too many {what}; retry in {max(1, retry_after)} s",
            retry_after=retry_after,
            code="rate_limited",
        )

    def close(self) -> None:
        # The memory storage keeps an expiry task on the running loop; it must not outlive it.
        timer = getattr(self.storage, "timer", None)
        if timer is not None:
            timer.cancel()


def rule(text: str) -> RateLimitItem:
    return parse(text)
