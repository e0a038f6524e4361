"""Payment gateways: one protocol, two adapters, chosen by `PAYMENT_GATEWAY`.

- `SandboxGateway` (default) decides in-process: every valid card is approved except the test
  numbers 4000000000000002 (declined) and 4000000000009995 (issuer refuses: insufficient funds).
- `HttpGateway` asks an external gateway over HTTP with the app's one shared
  `httpx.AsyncClient` (made in the lifespan: pooled connections, never a client per request,
  and httpx's transport retries a failed *connect*), a timeout of its own, and the idempotency
  key passed on.

The external gateway's contract (what `HttpGateway` speaks):

    POST {PAYMENT_GATEWAY_URL}/charges
    Idempotency-Key: <key>           (the gateway charges once per key)
    {"amount_minor": 2500, "currency": "USD",
     "card": {"number": "4242...", "exp_month": 12, "exp_year": 2030, "cvv": "123"}}

    200/201 {"id": "ch_123", "status": "approved"}   -> approved
    402     {"status": "declined", "reason": "card_declined" | "insufficient_funds"}
    anything else, or a body that is not that        -> 502 gateway_error

Only a failure to *connect* is retried (by the client's `AsyncHTTPTransport(retries=...)`, which
retries nothing else): the request never left, so it cannot have charged.
A timeout after sending is not retried here (the charge may have gone through); it becomes a
504 and the client may retry with the same Idempotency-Key, which reaches the gateway again
unchanged, so the card is still charged at most once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import structlog

from app.core.errors import AppError
from app.wallet.cards import Card

log = structlog.get_logger("app.wallet.gateway")

DECLINED_NUMBER = "4000000000000002"
INSUFFICIENT_FUNDS_NUMBER = "4000000000009995"

# A gateway that has not answered in 10 s is not going to: the client gets a 504 instead of
# holding a connection (and a worker) for the client's own, usually longer, timeout.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
MAX_REFERENCE_LENGTH = 100  # transactions.gateway_reference


class CardDeclined(AppError):
    status_code = 402
    code = "card_declined"


class GatewayError(AppError):
    """The gateway failed or answered nonsense: nothing was charged as far as we know."""

    status_code = 502
    code = "gateway_error"


class GatewayTimeout(AppError):
    status_code = 504
    code = "gateway_timeout"


@dataclass(frozen=True)
class Charge:
    reference: str


class PaymentGateway(Protocol):
    async def charge(
        self, *, amount_minor: int, currency: str, card: Card, idempotency_key: str
    ) -> Charge:
        """Charge the card, or raise CardDeclined, GatewayError or GatewayTimeout."""
        ...


class SandboxGateway:
    async def charge(
        self, *, amount_minor: int, currency: str, card: Card, idempotency_key: str
    ) -> Charge:
        number = card.number.get_secret_value()
        if number == DECLINED_NUMBER:
            raise CardDeclined("the card was declined", code="card_declined")
        if number == INSUFFICIENT_FUNDS_NUMBER:
            raise CardDeclined(
                "the card's issuer refused the charge: insufficient funds",
                code="card_insufficient_funds",
            )
        return Charge(reference=f"sandbox_{uuid.uuid4().hex}")


_DECLINE_CODES = {
    "card_declined": "card_declined",
    "insufficient_funds": "card_insufficient_funds",
}


class HttpGateway:
    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._client = client
        self._url = base_url.rstrip("/") + "/charges"
        self._timeout = timeout

    async def charge(
        self, *, amount_minor: int, currency: str, card: Card, idempotency_key: str
    ) -> Charge:
        payload = {
            "amount_minor": amount_minor,
            "currency": currency,
            "card": {
                "number": card.number.get_secret_value(),
                "exp_month": card.expiry_month,
                "exp_year": card.expiry_year,
                "cvv": card.cvv.get_secret_value(),
            },
        }
        response = await self._post(payload, idempotency_key)
        return self._interpret(response)

    async def _post(self, payload: dict[str, Any], idempotency_key: str) -> httpx.Response:
        try:
            return await self._client.post(
                self._url,
                json=payload,
                headers={"Idempotency-Key": idempotency_key},
                timeout=self._timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Still unreachable after the transport's retries; nothing was sent.
            log.warning("gateway_unreachable", error=type(exc).__name__)
            raise GatewayError(
                "the payment gateway is unreachable; nothing was charged",
                code="gateway_unavailable",
            ) from exc
        except httpx.TimeoutException as exc:
            log.warning("gateway_timeout", error=type(exc).__name__)
            raise GatewayTimeout(
                "the payment gateway did not answer in time; retry with the same Idempotency-Key",
                code="gateway_timeout",
            ) from exc
        except httpx.HTTPError as exc:
            log.warning("gateway_transport_error", error=type(exc).__name__)
            raise GatewayError(
                "the payment gateway connection failed", code="gateway_error"
            ) from exc

    @staticmethod
    def _interpret(response: httpx.Response) -> Charge:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        if response.status_code in (200, 201) and body.get("status") == "approved":
            reference = body.get("id")
            if isinstance(reference, str) and 0 < len(reference) <= MAX_REFERENCE_LENGTH:
                return Charge(reference=reference)
        if response.status_code == 402 and body.get("status") == "declined":
            code = _DECLINE_CODES.get(str(body.get("reason")), "card_declined")
            detail = (
                "the card's issuer refused the charge: insufficient funds"
                if code == "card_insufficient_funds"
                else "the card was declined"
            )
            raise CardDeclined(detail, code=code)
        log.warning("gateway_bad_answer", status=response.status_code)
        raise GatewayError("the payment gateway gave an unexpected answer", code="gateway_error")


def make_gateway(kind: str, *, http: httpx.AsyncClient, url: str | None) -> PaymentGateway:
    """The adapter the settings name (`PAYMENT_GATEWAY`, `PAYMENT_GATEWAY_URL`)."""
    if kind == "http":
        if not url:
            raise ValueError("PAYMENT_GATEWAY=http needs PAYMENT_GATEWAY_URL")
        return HttpGateway(http, url)
    return SandboxGateway()
