"""Rate limits with the `limits` library: in process memory by default, in Redis when
REDIS_URL is set (so every worker process shares one count).

A `Bucket` is one rule applied to one key ("5/minute" for failed logins of one email from one
client). `acquire()` takes a unit atomically before the guarded work, or raises 429, so a burst
of parallel requests cannot all pass before any is counted; `clear()` gives the allowance back
when the work proves legitimate (a correct password). `check()` before and `hit()` after count
only outcomes (a failure). A moving window, so a burst at a window edge cannot double the
allowance.

Redis down must not stop sign-in: the Redis storage raises `limits.errors.StorageError`
(`wrap_exceptions=True`), and the limiter then counts in process memory, logs one warning, and
tries Redis again every `RETRY_STORAGE_SECONDS` (`Storage.check()`); it logs once more when
Redis is back. Counts taken in memory meanwhile are per process: looser, never absent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis

from app.core.errors import TooManyRequests

log = structlog.get_logger("app.ratelimit")

# While Redis is down, how often a request tries it again (one failed connect at most).
RETRY_STORAGE_SECONDS = 2.0

T = TypeVar("T")


class InProcessStorage(MemoryStorage):
    """limits' MemoryStorage with a `clear()` its expiry pass can live with. The pass (a
    background task) snapshots the keys, then reads each key's entries after an await; limits
    5.8's `clear()` pops the key meanwhile, and the pass dies with a KeyError that nobody
    retrieves. Emptying the key's entries under its lock leaves the pass to drop the key
    itself. tests/core/test_ratelimit_memory.py fails without this."""

    async def clear(self, key: str) -> None:
        async with self.locks[key]:
            if key in self.events:
                self.events[key] = []
            self.storage.pop(key, None)
            self.expirations.pop(key, None)


class RateLimiter:
    def __init__(self, redis: Redis | None, redis_url: str | None) -> None:
        self._memory = InProcessStorage()
        self._in_memory = MovingWindowRateLimiter(self._memory)
        self._shared: MovingWindowRateLimiter | None = None
        self._shared_storage: RedisStorage | None = None
        if redis is not None and redis_url:
            # Shares the app's Redis pool, which the lifespan closes.
            self._shared_storage = RedisStorage(
                f"async+{redis_url}",
                implementation="redispy",
                wrap_exceptions=True,
                # limits types its options as scalars; redis-py's Redis() takes the pool as is.
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]
            )
            self._shared = MovingWindowRateLimiter(self._shared_storage)
        # monotonic time of the last failure of the shared storage; None while it works.
        self._shared_failed_at: float | None = None

    def bucket(self, limit: str, key: str, *, what: str) -> Bucket:
        return Bucket(self, parse(limit), key, what)

    async def run(self, operation: Callable[[MovingWindowRateLimiter], Awaitable[T]]) -> T:
        """`operation` on the shared (Redis) limiter, or on the in-process one while it is
        unavailable."""
        if self._shared is not None and self._shared_due():
            try:
                result = await operation(self._shared)
            except StorageError as exc:
                self._shared_down(exc)
            else:
                self._shared_up()
                return result
        return await operation(self._in_memory)

    def _shared_due(self) -> bool:
        failed_at = self._shared_failed_at
        return failed_at is None or time.monotonic() - failed_at >= RETRY_STORAGE_SECONDS

    def _shared_down(self, exc: StorageError) -> None:
        if self._shared_failed_at is None:  # once per outage, not once per request
            log.warning(
                "rate_limit_storage_unavailable",
                error=type(exc.storage_error).__name__,
                fallback="in-process",
            )
        self._shared_failed_at = time.monotonic()

    def _shared_up(self) -> None:
        if self._shared_failed_at is not None:
            self._shared_failed_at = None
            log.warning("rate_limit_storage_recovered")

    @property
    def degraded(self) -> bool:
        """True while counts are kept in process memory because Redis is unreachable."""
        return self._shared_failed_at is not None

    def close(self) -> None:
        # The memory storage keeps an expiry task on the running loop; it must not outlive it.
        timer = getattr(self._memory, "timer", None)
        if timer is not None:
            timer.cancel()


@dataclass(frozen=True)
class Bucket:
    """One rule applied to one key."""

    limiter: RateLimiter
    rule: RateLimitItem
    key: str
    what: str

    async def check(self) -> None:
        """Raise 429 with Retry-After when this bucket has no allowance left."""
        if not await self.limiter.run(lambda strategy: strategy.test(self.rule, self.key)):
            raise await self._too_many()

    async def acquire(self) -> None:
        """Take one unit now, atomically, or raise 429. Unlike check() then hit(), a burst of
        concurrent requests cannot all pass before any of them is counted."""
        if not await self.limiter.run(lambda strategy: strategy.hit(self.rule, self.key)):
            raise await self._too_many()

    async def hit(self) -> None:
        await self.limiter.run(lambda strategy: strategy.hit(self.rule, self.key))

    async def clear(self) -> None:
        await self.limiter.run(lambda strategy: strategy.clear(self.rule, self.key))

    async def _too_many(self) -> TooManyRequests:
        stats = await self.limiter.run(
            lambda strategy: strategy.get_window_stats(self.rule, self.key)
        )
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        return TooManyRequests(
            f"too many {self.what}; retry in {retry_after} s",
            retry_after=retry_after,
            code="rate_limited",
        )
