"""The error responses of the wallet's routes, for OpenAPI: every status a route can answer
with, as an RFC 9457 problem, with an example for each `code`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from app.wallet.schemas import Problem

_PROBLEM_SCHEMA = Problem.model_json_schema()

# (status, code, detail): one example per code a client may meet.
EXAMPLES: dict[str, tuple[int, str, str]] = {
    "not_authenticated": (401, "not_authenticated", "not authenticated"),
    "invalid_token": (401, "invalid_token", "token is invalid or expired"),
    "card_declined": (402, "card_declined", "the card was declined"),
    "card_insufficient_funds": (
        402,
        "card_insufficient_funds",
        "the card's issuer refused the charge: insufficient funds",
    ),
    "insufficient_funds": (400, "insufficient_funds", "your balance does not cover this payment"),
    "payee_not_found": (404, "payee_not_found", "payee not found"),
    "transaction_not_found": (
        404,
        "transaction_not_found",
        "transaction 0b0e2f6a-3c1d-4f7e-9a52-6d1c2b3a4f5e not found",
    ),
    "idempotency_in_progress": (
        409,
        "idempotency_in_progress",
        "a request with this Idempotency-Key is still in progress; retry shortly",
    ),
    "validation_error": (422, "validation_error", "request validation failed"),
    "rate_limited": (429, "rate_limited", "too many payments to unknown payees; retry in 42 s"),
    "idempotency_key_reused": (
        422,
        "idempotency_key_reused",
        "this Idempotency-Key was already used with a different request",
    ),
    "payment_to_self": (422, "payment_to_self", "you cannot pay yourself"),
    "invalid_cursor": (422, "invalid_cursor", "cursor is not valid"),
    "gateway_error": (502, "gateway_error", "the payment gateway gave an unexpected answer"),
    "gateway_unavailable": (
        502,
        "gateway_unavailable",
        "the payment gateway is unreachable; nothing was charged",
    ),
    "gateway_timeout": (
        504,
        "gateway_timeout",
        "the payment gateway did not answer in time; retry with the same Idempotency-Key",
    ),
    "content_too_large": (
        413,
        "content_too_large",
        "request body exceeds the limit of 1048576 bytes",
    ),
    "database_busy": (503, "database_busy", "the database is saturated; retry shortly"),
    "database_unavailable": (
        503,
        "database_unavailable",
        "the database connection was lost; retry shortly",
    ),
    "job_queue_unavailable": (
        503,
        "job_queue_unavailable",
        "the job queue is unreachable; nothing was done, retry shortly",
    ),
}


def _example(status: int, code: str, detail: str) -> dict[str, Any]:
    value: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": "0f8e4c1b2a3d4e5f",
    }
    if code == "validation_error":
        value["errors"] = [
            {
                "loc": ["body", "card", "number"],
                "msg": "Value error, card number is not valid (check digit)",
                "type": "value_error",
            }
        ]
    return value


def problems(*codes: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that may answer with these problem codes."""
    by_status: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        status, _, detail = EXAMPLES[code]
        entry = by_status.setdefault(
            status,
            {
                "description": HTTPStatus(status).phrase,
                "content": {
                    "application/problem+json": {"schema": _PROBLEM_SCHEMA, "examples": {}}
                },
            },
        )
        entry["content"]["application/problem+json"]["examples"][code] = {
            "summary": code,
            "value": _example(status, code, detail),
        }
    return by_status
