"""Admission control in front of the database: a bounded, first-come-first-served wait for a
turn, and an immediate 503 beyond it.

At most `limit` API requests are in their database part at once (by default `DB_POOL_SIZE`),
so the pool itself never has a queue of requests to serve unfairly (the stock pool lets a
newcomer overtake earlier waiters), and request traffic never needs an overflow connection
(which the stock pool closes when it comes back and reopens for the next burst). Up to
`max_waiting` more wait for a turn in arrival order (an `asyncio.Semaphore` queues newcomers
behind earlier waiters), each for at most `timeout` seconds. Anyone beyond that, or waiting
longer, gets a 503 `database_busy` with `Retry-After` at once, instead of a connection wait
that ends in the client's own timeout.

A turn ends when the response starts: the request's session is closed before that
(`SessionDep`), so what is left is sending bytes, which needs no connection.

Not admitted (they hold no connection, or hold a turn far too long to count): paths outside
the API (health, metrics, docs), and upload bodies (multipart, octet-stream, CSV), which can
take minutes to arrive and use a connection only at the end.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.error_handlers import problem_response

_UPLOAD_CONTENT_TYPES = (b"multipart/form-data", b"application/octet-stream", b"text/csv")


class DatabaseAdmission:
    """Pure ASGI middleware; install it inside the request-id middleware, so a 503 it sends
    carries the request id and is counted in the metrics like any other answer."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        max_waiting: int,
        timeout: float,
        path_prefix: str = "/api/",
    ) -> None:
        self.app = app
        self.limit = limit
        self.max_waiting = max_waiting
        self.timeout = timeout
        self.path_prefix = path_prefix
        self.turns = asyncio.Semaphore(limit)
        self.waiting = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._admits(scope):
            await self.app(scope, receive, send)
            return
        if not await self._take_turn():
            busy = problem_response(
                503,
                "database_busy",
                "too many requests are waiting for the database; retry shortly",
                headers={"Retry-After": "1"},
            )
            await busy(scope, receive, send)
            return

        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.turns.release()

        async def send_and_release(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self.app(scope, receive, send_and_release)
        finally:
            release()

    def _admits(self, scope: Scope) -> bool:
        if scope["type"] != "http" or not scope["path"].startswith(self.path_prefix):
            return False
        for name, value in scope["headers"]:
            if name == b"content-type":
                return not value.lower().startswith(_UPLOAD_CONTENT_TYPES)
        return True

    async def _take_turn(self) -> bool:
        """True once this request holds a turn; False when it must be turned away."""
        if not self.turns.locked():
            await self.turns.acquire()  # a free turn and nobody queued: returns at once
            return True
        if self.waiting >= self.max_waiting:
            return False
        self.waiting += 1
        try:
            async with asyncio.timeout(self.timeout):
                await self.turns.acquire()
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1
        return True
