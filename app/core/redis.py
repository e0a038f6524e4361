"""Options for every Redis connection pool of the app (the web process's and the job broker's)."""

from __future__ import annotations

from typing import Any

from redis.asyncio.retry import Retry  # the asyncio Retry: redis.retry.Retry does nothing here
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def redis_resilience() -> dict[str, Any]:
    """redis-py options for every Redis pool: after a Redis restart, a pooled connection that
    went stale is dropped and the command retried on a fresh one (with back-off) instead of
    failing, and a connection idle for a while is checked before use."""
    return {
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "health_check_interval": 5,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
