"""The taskiq broker glue: what carries a job's id to a process that runs it.

- No REDIS_URL (`make run`): taskiq's in-process `InMemoryBroker`; jobs run in the web process.
- REDIS_URL: taskiq-redis's `RedisStreamBroker`, a Redis stream read by one consumer group.
  A worker acknowledges a message once the job's outcome is recorded; a message that a dead
  worker held stays pending and is delivered again to another worker after `idle_timeout`
  (XAUTOCLAIM).

Both carry taskiq's retry middleware: a failed attempt that may be retried is sent again after
its back-off (delay x retry number, capped, with jitter), up to the kind's attempts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from taskiq import AsyncBroker, InMemoryBroker
from taskiq.kicker import AsyncKicker
from taskiq.message import TaskiqMessage
from taskiq.middlewares import SmartRetryMiddleware
from taskiq_redis import RedisStreamBroker

from app.core.redis import redis_resilience
from app.core.settings import Settings
from app.jobs.queue import JobKind, registered_kinds

TASK_NAME = "app.jobs.run"
STREAM_NAME = "app:jobs"
CONSUMER_GROUP = "app-workers"
# Acknowledged messages are trimmed past this length (approximately). A message trimmed unread
# is not lost: its job is still queued in the table and recovery hands it off again.
STREAM_MAX_LENGTH = 100_000
MAX_RETRY_DELAY_SECONDS = 60.0


class RetryLater(Exception):
    """Raised to taskiq by a failed attempt that may be retried (the row says so): the retry
    middleware sends the job again after its back-off. Nothing else is retried by taskiq."""


class RetryAfterBackoff(SmartRetryMiddleware):
    """taskiq's retry middleware. Neither broker here honours its `delay` label (the in-memory
    one delivers at once, a stream has no delayed delivery), so the back-off is waited here
    before the retry is sent; meanwhile the failed message stays unacknowledged, so a worker
    killed during the wait loses nothing."""

    async def on_send(
        self, kicker: AsyncKicker[Any, Any], message: TaskiqMessage, delay: float
    ) -> None:
        await asyncio.sleep(delay)
        await super().on_send(kicker, message, delay)


def labels(kind: JobKind | None) -> dict[str, Any]:
    """The taskiq labels a job's message carries: its retry policy."""
    if kind is None:
        return {}
    return {
        "retry_on_error": kind.retryable,
        "max_retries": kind.max_attempts,
        "delay": kind.retry_delay,
    }


def make_broker(settings: Settings) -> AsyncBroker:
    retries = RetryAfterBackoff(
        default_retry_label=False,
        use_jitter=True,
        use_delay_exponent=True,
        max_delay_exponent=MAX_RETRY_DELAY_SECONDS,
        types_of_exceptions=[RetryLater],
    )
    if not settings.redis_url:
        return InMemoryBroker(propagate_exceptions=False).with_middlewares(retries)
    longest = max((kind.time_limit for kind in registered_kinds().values()), default=300.0)
    broker = RedisStreamBroker(
        settings.redis_url,
        queue_name=STREAM_NAME,
        consumer_group_name=CONSUMER_GROUP,
        # "0", not "$": a group created after jobs were already added still sees them.
        consumer_id="0",
        maxlen=STREAM_MAX_LENGTH,
        # Above the longest time limit, so a live job's message is rarely delivered twice; a
        # second delivery finds the job claimed (its heartbeat is fresh) and is dropped.
        idle_timeout=int((longest + 60) * 1000),
        # The re-delivery lock is released by itself if its holder is killed.
        unacknowledged_lock_timeout=30,
        xread_block=1000,
        **redis_resilience(),
    )
    return broker.with_middlewares(retries)
