"""GET /users (superuser): cursor pages in ascending id, `?email=` exact and case-insensitive."""

from __future__ import annotations

import base64
import json

import pytest

from app.core.pagination import encode_cursor
from tests.users.conftest import assert_problem, assert_validation_problem

USERS = "/api/v1/users"


async def all_pages(client, headers, limit):
    """Every page of GET /users at `limit`, following next_cursor to its end."""
    pages, cursor = [], None
    while True:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = await client.get(USERS, params=params, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "next_cursor never ends"


@pytest.fixture
async def seven_users(sign_up):
    return [await sign_up(email=f"user{i}@example.com", name=f"User {i}") for i in range(7)]


async def test_pages_of_three_cover_everyone_once_in_ascending_id(
    client, seven_users, superuser_headers
):
    pages = await all_pages(client, superuser_headers, limit=3)

    # Seven users plus the superuser: 3 + 3 + 2.
    assert [len(page["items"]) for page in pages] == [3, 3, 2]
    assert [page["next_cursor"] is None for page in pages] == [False, False, True]
    ids = [item["id"] for page in pages for item in page["items"]]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids) == 8
    assert {u["id"] for u in seven_users} < set(ids)


async def test_a_last_page_that_is_exactly_full_has_no_next_cursor(
    client, sign_up, superuser_headers
):
    for i in range(5):  # plus the superuser: 6, two full pages of 3
        await sign_up(email=f"user{i}@example.com")

    pages = await all_pages(client, superuser_headers, limit=3)

    assert [len(page["items"]) for page in pages] == [3, 3]
    assert pages[-1]["next_cursor"] is None


async def test_one_page_holds_everyone_by_default(client, seven_users, superuser_headers):
    response = await client.get(USERS, headers=superuser_headers)

    assert response.status_code == 200
    assert len(response.json()["items"]) == 8
    assert response.json()["next_cursor"] is None
    first = next(i for i in response.json()["items"] if i["id"] == seven_users[0]["id"])
    assert first == seven_users[0]


async def test_users_created_between_pages_are_not_skipped_or_repeated(
    client, seven_users, superuser_headers, sign_up
):
    first = await client.get(USERS, params={"limit": 4}, headers=superuser_headers)
    late = await sign_up(email="late@example.com")

    rest = await all_pages_from(client, superuser_headers, first.json()["next_cursor"])

    ids = [i["id"] for i in first.json()["items"]] + [i["id"] for i in rest]
    assert len(ids) == len(set(ids)) == 9
    assert ids[-1] == late["id"]


async def all_pages_from(client, headers, cursor):
    items = []
    while cursor:
        response = await client.get(USERS, params={"limit": 4, "cursor": cursor}, headers=headers)
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
    return items


@pytest.mark.parametrize("limit", ["0", "-1", "201", "abc", "1.5"])
async def test_a_limit_outside_1_to_200_is_422(client, superuser_headers, limit):
    response = await client.get(USERS, params={"limit": limit}, headers=superuser_headers)

    assert_validation_problem(response, "limit")


@pytest.mark.parametrize("limit", [1, 200])
async def test_limits_at_the_bounds_are_accepted(client, seven_users, superuser_headers, limit):
    response = await client.get(USERS, params={"limit": limit}, headers=superuser_headers)

    assert response.status_code == 200
    assert len(response.json()["items"]) == min(limit, 8)


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "!!!!",
        "%%%",
        "a",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'"id"').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
async def test_a_cursor_that_does_not_decode_is_422_invalid_cursor(
    client, superuser_headers, cursor
):
    response = await client.get(USERS, params={"cursor": cursor}, headers=superuser_headers)

    assert_problem(response, 422, "invalid_cursor")


@pytest.mark.parametrize(
    "key",
    [
        {"id": "3"},
        {"id": None},
        {"id": 1.5},
        {"id": True},
        {"id": [1]},
        {"id": 2**63},
        {"id": -(2**63) - 1},
        {"id": 10**30},
        {"after": 3},
        {},
    ],
)
async def test_a_cursor_without_a_usable_integer_id_is_422_invalid_cursor(
    client, superuser_headers, key
):
    response = await client.get(
        USERS, params={"cursor": encode_cursor(key)}, headers=superuser_headers
    )

    assert_problem(response, 422, "invalid_cursor")


async def test_a_cursor_longer_than_512_characters_is_422(client, superuser_headers):
    cursor = encode_cursor({"id": 1, "pad": "x" * 600})

    response = await client.get(USERS, params={"cursor": cursor}, headers=superuser_headers)

    assert_validation_problem(response, "cursor")


async def test_a_deeply_nested_cursor_is_422_not_500(client, superuser_headers):
    cursor = base64.urlsafe_b64encode(b"[" * 380).decode().rstrip("=")

    response = await client.get(USERS, params={"cursor": cursor}, headers=superuser_headers)

    assert_problem(response, 422, "invalid_cursor")


async def test_a_cursor_past_the_end_gives_an_empty_last_page(
    client, seven_users, superuser_headers
):
    cursor = encode_cursor({"id": 2**63 - 1})

    response = await client.get(USERS, params={"cursor": cursor}, headers=superuser_headers)

    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_email_filter_matches_exactly(client, seven_users, superuser_headers):
    response = await client.get(
        USERS, params={"email": "user3@example.com"}, headers=superuser_headers
    )

    assert response.status_code == 200
    assert [i["id"] for i in response.json()["items"]] == [seven_users[3]["id"]]
    assert response.json()["next_cursor"] is None


async def test_email_filter_ignores_case(client, seven_users, superuser_headers):
    response = await client.get(
        USERS, params={"email": "USER3@Example.COM"}, headers=superuser_headers
    )

    assert [i["email"] for i in response.json()["items"]] == ["user3@example.com"]


@pytest.mark.parametrize("email", ["user3", "user3@example", "%", "user_@example.com", "*"])
async def test_email_filter_is_not_a_pattern_or_prefix(
    client, seven_users, superuser_headers, email
):
    response = await client.get(USERS, params={"email": email}, headers=superuser_headers)

    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_an_oversized_email_filter_is_422(client, superuser_headers):
    response = await client.get(
        USERS, params={"email": "a" * 400 + "@example.com"}, headers=superuser_headers
    )

    assert_validation_problem(response, "email")


async def test_listing_by_a_normal_user_is_403(client, user_headers):
    response = await client.get(USERS, headers=user_headers)

    assert_problem(response, 403, "forbidden")
    assert "items" not in response.json()


async def test_listing_without_a_token_is_401(client):
    response = await client.get(USERS)

    assert_problem(response, 401, "not_authenticated")


async def test_a_cursor_is_opaque_json_of_the_last_id(client, seven_users, superuser_headers):
    page = (await client.get(USERS, params={"limit": 2}, headers=superuser_headers)).json()

    raw = page["next_cursor"] + "=" * (-len(page["next_cursor"]) % 4)
    assert json.loads(base64.urlsafe_b64decode(raw)) == {"id": page["items"][-1]["id"]}
