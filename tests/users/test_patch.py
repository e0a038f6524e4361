"""PATCH /users/me: absent is unchanged, null clears a nullable field and is a 422 for a required
one, unknown fields are a 422, and a refused PATCH changes nothing in the database."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.users.conftest import assert_problem, assert_validation_problem

ME = "/api/v1/users/me"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
async def ann(sign_up, login):
    """A signed-in user with every field set: (their JSON, their auth headers)."""
    user = await sign_up(email="ann@example.com", name="Ann", age=30)
    return user, await login("ann@example.com")


async def assert_unchanged(user_row, user):
    row = await user_row(user["email"])
    assert row is not None
    assert (row.id, row.email, row.name, row.age) == (
        user["id"],
        user["email"],
        user["name"],
        user["age"],
    )
    assert (row.is_active, row.is_superuser) == (user["is_active"], user["is_superuser"])


async def test_patch_with_an_empty_body_changes_nothing_not_even_updated_at(client, ann, user_row):
    user, headers = ann

    response = await client.patch(ME, json={}, headers=headers)

    assert response.status_code == 200
    # Nothing sent, nothing written: no UPDATE runs, so updated_at keeps its value too.
    assert response.json() == user
    await assert_unchanged(user_row, user)


async def test_patch_name_changes_it_and_leaves_the_other_fields(client, ann, user_row):
    user, headers = ann

    response = await client.patch(ME, json={"name": "Annie"}, headers=headers)

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Annie"
    assert {k: v for k, v in body.items() if k not in {"name", "updated_at"}} == {
        k: v for k, v in user.items() if k not in {"name", "updated_at"}
    }
    assert body["updated_at"] >= user["updated_at"]
    row = await user_row("ann@example.com")
    assert (row.name, row.age, row.email) == ("Annie", 30, "ann@example.com")


async def test_patch_age_null_clears_it(client, ann, user_row):
    _, headers = ann

    response = await client.patch(ME, json={"age": None}, headers=headers)

    assert response.status_code == 200
    assert response.json()["age"] is None
    assert response.json()["name"] == "Ann"
    assert (await user_row("ann@example.com")).age is None


async def test_patch_age_sets_it(client, ann, user_row):
    _, headers = ann

    response = await client.patch(ME, json={"age": 0}, headers=headers)

    assert response.json()["age"] == 0
    assert (await user_row("ann@example.com")).age == 0


@pytest.mark.parametrize("field", ["name", "email"])
async def test_patch_null_for_a_required_field_is_422_and_changes_nothing(
    client, ann, user_row, field
):
    user, headers = ann

    response = await client.patch(ME, json={field: None, "age": 5}, headers=headers)

    assert_validation_problem(response, field)
    await assert_unchanged(user_row, user)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"age": -1}, "age"),
        ({"age": 151}, "age"),
        ({"email": "nope"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "x" * 129}, "password"),
        ({"is_active": "maybe"}, "is_active"),
        ({"nickname": "A"}, "nickname"),
        ({"hashed_password": "x"}, "hashed_password"),
        ({"balance_minor": 100}, "balance_minor"),
        ({"id": 99}, "id"),
    ],
)
async def test_patch_with_invalid_or_unknown_fields_is_422_and_changes_nothing(
    client, ann, user_row, patch, field
):
    user, headers = ann

    response = await client.patch(ME, json={"name": "Changed", **patch}, headers=headers)

    assert_validation_problem(response, field)
    await assert_unchanged(user_row, user)


@pytest.mark.parametrize("payload", [[], None, "name", 1])
async def test_patch_with_a_body_that_is_not_an_object_is_422(client, ann, payload):
    _, headers = ann

    response = await client.patch(ME, json=payload, headers=headers)

    assert_validation_problem(response)


async def test_patch_with_a_body_that_is_not_json_is_422(client, ann, user_row):
    user, headers = ann

    response = await client.patch(
        ME, content=b'{"name": "x"', headers={**headers, "Content-Type": "application/json"}
    )

    assert_validation_problem(response)
    await assert_unchanged(user_row, user)


async def test_patch_email_lower_cases_it_and_login_uses_the_new_one(client, ann, login, user_row):
    _, headers = ann

    response = await client.patch(ME, json={"email": "Ann.New@Example.com"}, headers=headers)

    assert response.status_code == 200
    assert response.json()["email"] == "ann.new@example.com"
    assert await user_row("ann@example.com") is None
    assert await login("ann.new@example.com")


async def test_patch_email_to_my_own_in_another_case_is_200(client, ann, user_row):
    user, headers = ann

    response = await client.patch(ME, json={"email": "ANN@example.com"}, headers=headers)

    assert response.status_code == 200
    assert response.json()["email"] == "ann@example.com"
    await assert_unchanged(user_row, user)


@pytest.mark.parametrize("taken", ["bob@example.com", "BOB@Example.com"])
async def test_patch_email_to_a_taken_one_is_409_and_changes_nothing(
    client, ann, sign_up, user_row, taken
):
    user, headers = ann
    bob = await sign_up(email="bob@example.com", name="Bob")

    response = await client.patch(ME, json={"email": taken, "name": "Changed"}, headers=headers)

    assert_problem(response, 409, "email_taken")
    await assert_unchanged(user_row, user)
    await assert_unchanged(user_row, bob)


async def test_patch_after_a_409_still_works(client, ann, sign_up, user_row):
    _, headers = ann
    await sign_up(email="bob@example.com", name="Bob")
    await client.patch(ME, json={"email": "bob@example.com"}, headers=headers)

    response = await client.patch(ME, json={"name": "Annie"}, headers=headers)

    assert response.status_code == 200
    assert response.json()["email"] == "ann@example.com"
    assert (await user_row("ann@example.com")).name == "Annie"


async def test_password_change_without_current_password_is_403(client, ann, login, user_row):
    _, headers = ann
    before = (await user_row("ann@example.com")).hashed_password

    response = await client.patch(ME, json={"password": NEW_PASSWORD}, headers=headers)

    assert_problem(response, 403, "current_password_invalid")
    assert (await user_row("ann@example.com")).hashed_password == before
    assert await login("ann@example.com", PASSWORD)


@pytest.mark.parametrize("wrong", ["not my password", "", "x" * 128])
async def test_password_change_with_a_wrong_current_password_is_403(
    client, ann, login, user_row, wrong
):
    _, headers = ann
    before = (await user_row("ann@example.com")).hashed_password

    response = await client.patch(
        ME,
        json={"password": NEW_PASSWORD, "current_password": wrong, "name": "Changed"},
        headers=headers,
    )

    assert_problem(response, 403, "current_password_invalid")
    row = await user_row("ann@example.com")
    assert (row.hashed_password, row.name) == (before, "Ann")
    assert await login("ann@example.com", PASSWORD)


async def test_password_change_with_the_right_current_password_switches_logins(client, ann, login):
    _, headers = ann

    response = await client.patch(
        ME, json={"password": NEW_PASSWORD, "current_password": PASSWORD}, headers=headers
    )

    assert response.status_code == 200
    assert "password" not in response.text
    assert await login("ann@example.com", NEW_PASSWORD)
    old = await client.post(
        "/api/v1/auth/token", data={"username": "ann@example.com", "password": PASSWORD}
    )
    assert_problem(old, 401, "invalid_credentials")


async def test_current_password_alone_changes_nothing(client, ann, login, user_row):
    user, headers = ann

    response = await client.patch(ME, json={"current_password": PASSWORD}, headers=headers)

    assert response.status_code == 200
    await assert_unchanged(user_row, user)
    assert await login("ann@example.com", PASSWORD)


@pytest.mark.parametrize(
    "patch",
    [{"is_superuser": True}, {"is_active": False}, {"is_active": True}, {"is_superuser": False}],
)
async def test_a_normal_user_cannot_set_admin_flags_and_nothing_changes(
    client, ann, user_row, patch
):
    user, headers = ann

    response = await client.patch(ME, json={**patch, "name": "Changed"}, headers=headers)

    assert_problem(response, 403, "forbidden")
    await assert_unchanged(user_row, user)
