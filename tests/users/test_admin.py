"""/users/{id}: self or superuser. Someone else's account is a 404 for a normal user, and only a
superuser may set the admin flags, reset a password or delete an account."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.users.conftest import assert_problem, assert_validation_problem

USERS = "/api/v1/users"
NEW_PASSWORD = "a brand new passphrase"
BAD_IDS = ["0", "-1", str(2**63), "abc", "1.5", "1e3", "9" * 40]
LARGEST_ID = 2**63 - 1


@pytest.fixture
async def ann(sign_up, login):
    user = await sign_up(email="ann@example.com", name="Ann", age=30)
    return user, await login("ann@example.com")


@pytest.fixture
async def bob(sign_up):
    return await sign_up(email="bob@example.com", name="Bob", age=40)


async def test_get_self_by_id_is_200(client, ann):
    user, headers = ann

    response = await client.get(f"{USERS}/{user['id']}", headers=headers)

    assert response.status_code == 200
    assert response.json() == user


async def test_get_someone_else_is_404_for_a_normal_user(client, ann, bob):
    _, headers = ann

    response = await client.get(f"{USERS}/{bob['id']}", headers=headers)

    assert_problem(response, 404, "user_not_found")
    assert "bob" not in response.text


async def test_someone_else_and_an_absent_id_look_the_same_to_a_normal_user(client, ann, bob):
    _, headers = ann

    other = await client.get(f"{USERS}/{bob['id']}", headers=headers)
    absent = await client.get(f"{USERS}/{bob['id'] + 1000}", headers=headers)

    assert (other.status_code, other.json()["code"]) == (absent.status_code, absent.json()["code"])


async def test_get_someone_else_is_200_for_a_superuser(client, bob, superuser_headers):
    response = await client.get(f"{USERS}/{bob['id']}", headers=superuser_headers)

    assert response.status_code == 200
    assert response.json() == bob


async def test_get_an_absent_id_is_404_for_a_superuser(client, superuser_headers):
    response = await client.get(f"{USERS}/{LARGEST_ID}", headers=superuser_headers)

    assert_problem(response, 404, "user_not_found")


async def test_get_by_id_without_a_token_is_401(client, bob):
    response = await client.get(f"{USERS}/{bob['id']}")

    assert_problem(response, 401, "not_authenticated")


async def test_patch_self_by_id_is_200(client, ann, user_row):
    user, headers = ann

    response = await client.patch(f"{USERS}/{user['id']}", json={"name": "Annie"}, headers=headers)

    assert response.status_code == 200
    assert response.json()["name"] == "Annie"
    assert (await user_row("ann@example.com")).name == "Annie"


async def test_patch_self_by_id_follows_the_same_password_rule(client, ann):
    user, headers = ann

    response = await client.patch(
        f"{USERS}/{user['id']}", json={"password": NEW_PASSWORD}, headers=headers
    )

    assert_problem(response, 403, "current_password_invalid")


async def test_patch_self_by_id_cannot_set_admin_flags(client, ann, user_row):
    user, headers = ann

    response = await client.patch(
        f"{USERS}/{user['id']}", json={"is_superuser": True}, headers=headers
    )

    assert_problem(response, 403, "forbidden")
    assert (await user_row("ann@example.com")).is_superuser is False


async def test_patch_someone_else_is_404_for_a_normal_user_and_changes_nothing(
    client, ann, bob, user_row
):
    _, headers = ann

    response = await client.patch(f"{USERS}/{bob['id']}", json={"name": "Hacked"}, headers=headers)

    assert_problem(response, 404, "user_not_found")
    assert (await user_row("bob@example.com")).name == "Bob"


async def test_superuser_patches_someone_else(client, bob, superuser_headers, user_row):
    response = await client.patch(
        f"{USERS}/{bob['id']}", json={"name": "Robert", "age": None}, headers=superuser_headers
    )

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["age"]) == ("Robert", None)
    row = await user_row("bob@example.com")
    assert (row.name, row.age) == ("Robert", None)


async def test_superuser_patch_with_null_name_is_422_and_changes_nothing(
    client, bob, superuser_headers, user_row
):
    response = await client.patch(
        f"{USERS}/{bob['id']}", json={"name": None}, headers=superuser_headers
    )

    assert_validation_problem(response, "name")
    assert (await user_row("bob@example.com")).name == "Bob"


async def test_superuser_patch_of_an_absent_id_is_404(client, superuser_headers):
    response = await client.patch(
        f"{USERS}/{LARGEST_ID}", json={"name": "Ghost"}, headers=superuser_headers
    )

    assert_problem(response, 404, "user_not_found")


async def test_superuser_changing_an_email_to_a_taken_one_is_409(
    client, ann, bob, superuser_headers, user_row
):
    response = await client.patch(
        f"{USERS}/{bob['id']}", json={"email": "ANN@example.com"}, headers=superuser_headers
    )

    assert_problem(response, 409, "email_taken")
    assert (await user_row("bob@example.com")).id == bob["id"]


async def test_superuser_makes_someone_a_superuser(client, ann, superuser_headers, user_row):
    user, headers = ann

    response = await client.patch(
        f"{USERS}/{user['id']}", json={"is_superuser": True}, headers=superuser_headers
    )

    assert response.status_code == 200
    assert response.json()["is_superuser"] is True
    assert (await user_row("ann@example.com")).is_superuser is True
    # Ann's existing token now carries superuser rights: the flag is read on every request.
    assert (await client.get(USERS, headers=headers)).status_code == 200


async def test_superuser_deactivates_someone_who_is_then_locked_out(
    client, ann, superuser_headers, user_row
):
    user, headers = ann

    response = await client.patch(
        f"{USERS}/{user['id']}", json={"is_active": False}, headers=superuser_headers
    )

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert (await user_row("ann@example.com")).is_active is False
    assert_problem(await client.get(f"{USERS}/me", headers=headers), 401, "invalid_token")
    token = await client.post(
        "/api/v1/auth/token", data={"username": "ann@example.com", "password": PASSWORD}
    )
    assert_problem(token, 403, "inactive_user")


async def test_superuser_reactivates_someone(client, bob, superuser_headers, login):
    url = f"{USERS}/{bob['id']}"
    await client.patch(url, json={"is_active": False}, headers=superuser_headers)

    response = await client.patch(url, json={"is_active": True}, headers=superuser_headers)

    assert response.json()["is_active"] is True
    assert await login("bob@example.com")


async def test_superuser_resets_a_password_without_current_password(
    client, bob, superuser_headers, login
):
    response = await client.patch(
        f"{USERS}/{bob['id']}", json={"password": NEW_PASSWORD}, headers=superuser_headers
    )

    assert response.status_code == 200
    assert await login("bob@example.com", NEW_PASSWORD)
    old = await client.post(
        "/api/v1/auth/token", data={"username": "bob@example.com", "password": PASSWORD}
    )
    assert_problem(old, 401, "invalid_credentials")


async def test_superuser_deletes_a_user_who_is_then_inactive_and_anonymised(
    client, bob, superuser_headers, user_row
):
    url = f"{USERS}/{bob['id']}"

    response = await client.delete(url, headers=superuser_headers)

    assert response.status_code == 204
    assert response.content == b""
    assert await user_row("bob@example.com") is None
    # The row stays (the ledger may name it), anonymised; deleting it again changes nothing.
    kept = (await client.get(url, headers=superuser_headers)).json()
    assert kept["is_active"] is False
    assert (kept["email"], kept["name"], kept["age"]) != ("bob@example.com", "Bob", 40)
    assert (await client.delete(url, headers=superuser_headers)).status_code == 204


async def test_deleting_a_user_who_has_logged_in_also_drops_their_tokens(
    client, ann, superuser_headers, user_row
):
    user, _ = ann

    response = await client.delete(f"{USERS}/{user['id']}", headers=superuser_headers)

    assert response.status_code == 204
    assert await user_row("ann@example.com") is None


async def test_a_deleted_email_can_sign_up_again(client, bob, superuser_headers, sign_up):
    await client.delete(f"{USERS}/{bob['id']}", headers=superuser_headers)

    again = await sign_up(email="bob@example.com", name="Bob again")

    assert again["id"] != bob["id"]


async def test_delete_of_an_absent_id_is_404(client, superuser_headers):
    response = await client.delete(f"{USERS}/{LARGEST_ID}", headers=superuser_headers)

    assert_problem(response, 404, "user_not_found")


async def test_delete_by_a_normal_user_is_403_even_for_self(client, ann, bob, user_row):
    user, headers = ann

    someone = await client.delete(f"{USERS}/{bob['id']}", headers=headers)
    self = await client.delete(f"{USERS}/{user['id']}", headers=headers)

    assert_problem(someone, 403, "forbidden")
    assert_problem(self, 403, "forbidden")
    assert await user_row("bob@example.com") is not None
    assert await user_row("ann@example.com") is not None


async def test_delete_without_a_token_is_401(client, bob, user_row):
    response = await client.delete(f"{USERS}/{bob['id']}")

    assert_problem(response, 401, "not_authenticated")
    assert await user_row("bob@example.com") is not None


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_a_malformed_or_out_of_range_id_is_422(client, superuser_headers, method):
    for bad_id in BAD_IDS:
        response = await client.request(
            method, f"{USERS}/{bad_id}", json={"name": "x"}, headers=superuser_headers
        )

        assert_validation_problem(response, "user_id")


@pytest.mark.parametrize("bad_id", ["0", str(2**63), "abc"])
async def test_a_malformed_id_is_422_for_a_normal_user_too(client, ann, bad_id):
    _, headers = ann

    response = await client.get(f"{USERS}/{bad_id}", headers=headers)

    assert_validation_problem(response, "user_id")
