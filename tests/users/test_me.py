from __future__ import annotations

from tests.users.conftest import PUBLIC_KEYS, assert_problem

ME = "/api/v1/users/me"


async def test_me_returns_the_signed_in_user(client, sign_up, login):
    user = await sign_up(email="ann@example.com", name="Ann", age=30)
    headers = await login("ann@example.com")

    response = await client.get(ME, headers=headers)

    assert response.status_code == 200
    assert response.json() == user
    assert set(response.json()) == PUBLIC_KEYS


async def test_me_without_a_token_is_401_with_www_authenticate(client):
    response = await client.get(ME)

    assert_problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_me_with_a_garbage_token_is_401(client):
    response = await client.get(ME, headers={"Authorization": "Bearer not.a.token"})

    assert_problem(response, 401, "invalid_token")


async def test_patch_me_without_a_token_is_401(client):
    response = await client.patch(ME, json={"name": "Eve"})

    assert_problem(response, 401, "not_authenticated")


async def test_me_of_a_deleted_user_is_401(client, sign_up, login, superuser_headers):
    user = await sign_up()
    headers = await login(user["email"])
    await client.delete(f"/api/v1/users/{user['id']}", headers=superuser_headers)

    response = await client.get(ME, headers=headers)

    assert_problem(response, 401, "invalid_token")
