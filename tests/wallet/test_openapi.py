"""The wallet's OpenAPI: typed responses, and every error a route can answer with documented as
an RFC 9457 problem with an example per code. Checked against the running app's /openapi.json,
and against what the routes really answer."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient

from tests.wallet.conftest import (
    PAYMENTS,
    TOP_UPS,
    TRANSACTIONS,
    WALLET,
    NewMember,
    card,
)

API = "/api/v1"
AUTH = {"not_authenticated", "invalid_token"}
DATABASE = {"database_busy", "database_unavailable"}

# (method, path) -> (success status, success schema, {status: codes documented})
ROUTES: dict[tuple[str, str], tuple[str, str, dict[str, set[str]]]] = {
    ("get", "/wallet"): ("200", "WalletRead", {"401": AUTH, "503": DATABASE}),
    ("post", "/wallet/top-ups"): (
        "201",
        "TransactionRead",
        {
            "401": AUTH,
            "402": {"card_declined", "card_insufficient_funds"},
            "409": {"idempotency_in_progress"},
            "413": {"content_too_large"},
            "422": {"validation_error", "idempotency_key_reused"},
            "502": {"gateway_error", "gateway_unavailable"},
            "503": DATABASE,
            "504": {"gateway_timeout"},
        },
    ),
    ("post", "/payments"): (
        "201",
        "TransactionRead",
        {
            "400": {"insufficient_funds"},
            "401": AUTH,
            "404": {"payee_not_found"},
            "429": {"rate_limited"},
            "409": {"idempotency_in_progress"},
            "413": {"content_too_large"},
            "422": {"validation_error", "payment_to_self", "idempotency_key_reused"},
            "503": DATABASE,
        },
    ),
    ("get", "/transactions"): (
        "200",
        "Page_TransactionRead_",
        {"401": AUTH, "422": {"validation_error", "invalid_cursor"}, "503": DATABASE},
    ),
    ("get", "/transactions/{transaction_id}"): (
        "200",
        "TransactionRead",
        {
            "401": AUTH,
            "404": {"transaction_not_found"},
            "422": {"validation_error"},
            "503": DATABASE,
        },
    ),
}


@pytest.fixture
async def spec(client: AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@pytest.mark.parametrize(("method", "path"), list(ROUTES), ids=[" ".join(r) for r in ROUTES])
def test_every_error_is_documented_with_an_example(
    spec: dict[str, Any], method: str, path: str
) -> None:
    success, schema, errors = ROUTES[(method, path)]
    responses = spec["paths"][API + path][method]["responses"]
    assert set(responses) == {success, *errors}
    assert responses[success]["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{schema}"
    }
    for status, codes in errors.items():
        content = responses[status]["content"]
        assert set(content) == {"application/problem+json"}, (path, status)
        problem = content["application/problem+json"]
        assert {"status", "code", "detail", "title", "type"} <= set(problem["schema"]["properties"])
        examples = problem["examples"]
        assert set(examples) == codes, (path, status)
        for code, example in examples.items():
            value = example["value"]
            assert (value["status"], value["code"]) == (int(status), code)
            assert value["detail"]
            assert value["title"]


def test_the_money_routes_document_the_replay_header_and_the_key(spec: dict[str, Any]) -> None:
    for path in ("/wallet/top-ups", "/payments"):
        operation = spec["paths"][API + path]["post"]
        assert "Idempotent-Replayed" in operation["responses"]["201"]["headers"]
        [key] = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert key["in"] == "header"
        assert key["required"] is False
        body = operation["requestBody"]["content"]["application/json"]
        assert body["schema"]["$ref"].endswith(("TopUpCreate", "PaymentCreate"))


def test_money_is_a_string_in_the_schema(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for field in ("amount", "balance_after"):
        assert schemas["TransactionRead"]["properties"][field]["type"] == "string"
    assert schemas["WalletRead"]["properties"]["balance"]["type"] == "string"


async def test_the_documented_problems_are_what_the_routes_answer(
    client: AsyncClient, member: NewMember, spec: dict[str, Any]
) -> None:
    """A sample of real answers, each matched to its documented status and code."""
    alice, bob = await member("1.00"), await member()
    answers = [
        (
            "post",
            "/payments",
            await client.post(
                PAYMENTS, json={"payee_id": bob.id, "amount": "5"}, headers=alice.headers
            ),
        ),
        (
            "post",
            "/payments",
            await client.post(
                PAYMENTS, json={"payee_id": alice.id, "amount": "1"}, headers=alice.headers
            ),
        ),
        (
            "post",
            "/wallet/top-ups",
            await client.post(
                TOP_UPS,
                json={"amount": "1", "card": card("4000000000000002")},
                headers=alice.headers,
            ),
        ),
        (
            "post",
            "/wallet/top-ups",
            await client.post(TOP_UPS, json={"amount": "1", "card": card()}),
        ),
        ("get", "/wallet", await client.get(WALLET, headers={"Authorization": "Bearer nope"})),
        (
            "get",
            "/transactions",
            await client.get(TRANSACTIONS, params={"cursor": "%%%"}, headers=alice.headers),
        ),
        (
            "get",
            "/transactions/{transaction_id}",
            await client.get(f"{TRANSACTIONS}/not-a-uuid", headers=alice.headers),
        ),
    ]
    for method, path, response in answers:
        documented = spec["paths"][API + path][method]["responses"][str(response.status_code)]
        examples = documented["content"]["application/problem+json"]["examples"]
        assert response.json()["code"] in examples, (path, response.text)
