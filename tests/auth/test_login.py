"""POST /auth/token: the OAuth2 password form in, a token pair out; failures alike."""

from __future__ import annotations

import jwt

from tests.auth.conftest import (
    ME_URL,
    TOKEN_URL,
    assert_problem,
    bearer,
    post_login,
    without_request_id,
)
from tests.conftest import PASSWORD


async def deactivate(client, superuser_headers, user_id: int) -> None:
    response = await client.patch(
        f"/api/v1/users/{user_id}", json={"is_active": False}, headers=superuser_headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False


async def test_login_returns_a_bearer_token_pair(client, sign_up, settings):
    user = await sign_up()

    response = await post_login(client, user["email"], PASSWORD)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert body["refresh_token"]
    assert body["refresh_token"] != body["access_token"]
    claims = jwt.decode(body["access_token"], settings.secret, algorithms=["HS256"])
    assert claims["sub"] == str(user["id"])
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds


async def test_token_response_is_not_cacheable(client, sign_up):
    # RFC 6749 §5.1: a response carrying tokens must say Cache-Control: no-store.
    user = await sign_up()

    response = await post_login(client, user["email"], PASSWORD)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_access_token_from_login_reads_me(client, sign_up):
    user = await sign_up()
    access = (await post_login(client, user["email"], PASSWORD)).json()["access_token"]

    response = await client.get(ME_URL, headers=bearer(access))

    assert response.status_code == 200
    assert response.json()["id"] == user["id"]


async def test_login_email_is_case_insensitive(client, sign_up):
    await sign_up(email="Ann.Lee@Example.com")

    for spelling in ("ann.lee@example.com", "ANN.LEE@EXAMPLE.COM", "Ann.Lee@example.COM"):
        response = await post_login(client, spelling, PASSWORD)
        assert response.status_code == 200, (spelling, response.text)


async def test_unknown_email_and_wrong_password_fail_identically(client, sign_up):
    user = await sign_up()

    unknown = await post_login(client, "nobody@example.com", PASSWORD)
    wrong = await post_login(client, user["email"], "not the password")

    for response in (unknown, wrong):
        assert_problem(response, 401, "invalid_credentials")
    assert without_request_id(unknown) == without_request_id(wrong)
    assert unknown.headers["www-authenticate"] == wrong.headers["www-authenticate"] == "Bearer"


async def test_inactive_user_is_told_so_only_after_the_correct_password(
    client, sign_up, superuser_headers
):
    user = await sign_up()
    await deactivate(client, superuser_headers, user["id"])

    right = await post_login(client, user["email"], PASSWORD)
    wrong = await post_login(client, user["email"], "not the password")

    assert_problem(right, 403, "inactive_user")
    assert "access_token" not in right.text
    assert_problem(wrong, 401, "invalid_credentials")


async def test_deactivated_users_access_token_stops_working_at_once(
    client, sign_up, login, superuser_headers
):
    user = await sign_up()
    headers = await login(user["email"])
    assert (await client.get(ME_URL, headers=headers)).status_code == 200

    await deactivate(client, superuser_headers, user["id"])

    assert_problem(await client.get(ME_URL, headers=headers), 401, "invalid_token")


async def test_login_form_without_password_is_422_without_echo(client):
    email = "echo-me-not@example.com"

    response = await client.post(TOKEN_URL, data={"username": email})

    assert_problem(response, 422, "validation_error")
    assert ["body", "password"] in [error["loc"] for error in response.json()["errors"]]
    assert email not in response.text


async def test_login_form_without_username_does_not_echo_the_password(client):
    secret = "S3cret-do-not-echo!"

    response = await client.post(TOKEN_URL, data={"password": secret})

    assert_problem(response, 422, "validation_error")
    assert secret not in response.text


async def test_overlong_login_password_is_422_without_echo(client, sign_up):
    user = await sign_up()
    secret = "x" * 129

    response = await post_login(client, user["email"], secret)

    assert_problem(response, 422, "validation_error")
    assert secret not in response.text


async def test_login_with_json_instead_of_a_form_is_422(client, sign_up):
    user = await sign_up()

    response = await client.post(TOKEN_URL, json={"username": user["email"], "password": PASSWORD})

    assert_problem(response, 422, "validation_error")
    assert PASSWORD not in response.text


async def test_sign_up_without_email_does_not_echo_the_password(client):
    secret = "S3cret-do-not-echo!"

    response = await client.post("/api/v1/users", json={"password": secret, "name": "Ann"})

    assert_problem(response, 422, "validation_error")
    assert ["body", "email"] in [error["loc"] for error in response.json()["errors"]]
    assert secret not in response.text
