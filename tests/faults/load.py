"""Continuous load on a live server, recorded request by request: each client, on a connection
of its own, reads its wallet and pays 0.01 to the next person, again and again, until told to
stop. What came back (or what went wrong on the wire) and when, is kept for the assertions.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from tests.notifications.conftest import Person, new_person

API = "/api/v1"
PAYMENT = "0.01"
# After a 503 a client waits this long before its next request: a retrying client, not a
# busy loop that would starve the server of the machine's two cores. (Shorter than the
# answer's Retry-After, so the first success after an outage is seen at once.)
PAUSE_AFTER_REFUSAL_SECONDS = 0.02


async def funded_people(client: httpx.AsyncClient, count: int, balance: str) -> list[Person]:
    """`count` users, signed in, each with `balance` topped up (all at once)."""
    signed_up: list[Person] = []

    async def one(index: int) -> None:
        signed_up.append(await new_person(client, name=f"P{index}", balance=balance))

    async with anyio.create_task_group() as tasks:
        for index in range(count):
            tasks.start_soon(one, index)
    return sorted(signed_up, key=lambda person: person.id)


@dataclass
class Outcome:
    client: int
    operation: str  # "wallet" or "payment"
    request_id: str
    started_at: float
    finished_at: float
    status: int | None = None  # None: no response (see `error`)
    body: Any = None
    retry_after: str | None = None
    error: httpx.TransportError | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None

    @property
    def seconds(self) -> float:
        return self.finished_at - self.started_at

    def describe(self) -> str:
        if self.status is None:
            return f"{self.operation}: {type(self.error).__name__} {self.error}"
        return f"{self.operation}: {self.status} {self.code or ''}".rstrip()


@dataclass
class Load:
    base_url: str
    people: Sequence[Person]
    clients: int
    timeout: float = 10.0
    # A client whose request failed on the wire stops (the server is going away).
    stop_on_transport_error: bool = False
    outcomes: list[Outcome] = field(default_factory=list)
    _stopping: anyio.Event = field(default_factory=anyio.Event)
    _recorded: anyio.Event = field(default_factory=anyio.Event)

    async def run(self) -> None:
        """Until `stop()`: returns once every client has finished its last request."""
        async with anyio.create_task_group() as clients:
            for index in range(self.clients):
                clients.start_soon(self._client, index)

    def stop(self) -> None:
        self._stopping.set()

    async def wait_until(self, condition: Callable[[], bool], seconds: float, what: str) -> None:
        """Until `condition()` holds, checked after each recorded outcome."""
        with anyio.move_on_after(seconds):
            while not condition():
                await self._recorded.wait()
            return
        raise AssertionError(f"not within {seconds} s: {what}; outcomes: {self.summary()}")

    def summary(self) -> dict[str, int]:
        return dict(Counter(outcome.describe() for outcome in self.outcomes))

    def fewest(self, matching: Callable[[Outcome], bool], since: float = 0.0) -> int:
        """The fewest outcomes `matching` any one client had for its requests sent at or
        after `since` (0: no client has had one)."""
        counts = Counter(outcome.client for outcome in self.since(since) if matching(outcome))
        return min(counts[client] for client in range(self.clients))

    def since(self, moment: float) -> list[Outcome]:
        """The outcomes of the requests sent at or after `moment`."""
        return [outcome for outcome in self.outcomes if outcome.started_at >= moment]

    async def _client(self, index: int) -> None:
        payer = self.people[index % len(self.people)]
        payee = self.people[(index + 1) % len(self.people)]
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, limits=limits
        ) as http:
            while not self._stopping.is_set():
                for operation in ("wallet", "payment"):
                    outcome = await self._send(http, index, operation, payer, payee)
                    self._record(outcome)
                    if outcome.error is not None and self.stop_on_transport_error:
                        return
                    if outcome.status == 503:
                        await anyio.sleep(PAUSE_AFTER_REFUSAL_SECONDS)

    async def _send(
        self, http: httpx.AsyncClient, client: int, operation: str, payer: Person, payee: Person
    ) -> Outcome:
        request_id = uuid.uuid4().hex
        headers = payer.headers | {"X-Request-ID": request_id}
        started_at = time.monotonic()
        try:
            if operation == "wallet":
                response = await http.get(f"{API}/wallet", headers=headers)
            else:
                body = {"payee_id": payee.id, "amount": PAYMENT}
                response = await http.post(f"{API}/payments", json=body, headers=headers)
        except httpx.TransportError as exc:
            finished_at = time.monotonic()
            return Outcome(client, operation, request_id, started_at, finished_at, error=exc)
        finished_at = time.monotonic()
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return Outcome(
            client,
            operation,
            request_id,
            started_at,
            finished_at,
            status=response.status_code,
            body=body,
            retry_after=response.headers.get("Retry-After"),
        )

    def _record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        recorded, self._recorded = self._recorded, anyio.Event()
        recorded.set()
