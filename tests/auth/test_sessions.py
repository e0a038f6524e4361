"""Sessions end when they should (issue #15, item 5): a password change ends every session of
the user, refresh tokens and access tokens alike; a logout ends that session's access tokens
too, and only that session's."""

from __future__ import annotations

from tests.auth.conftest import (
    LOGOUT_URL,
    ME_URL,
    assert_problem,
    bearer,
    post_login,
    refresh,
)
from tests.conftest import PASSWORD

NEW_PASSWORD = "a brand new passphrase"


async def change_password(client, access_token: str) -> None:
    body = {"password": NEW_PASSWORD, "current_password": PASSWORD}
    response = await client.patch(ME_URL, json=body, headers=bearer(access_token))
    assert response.status_code == 200, response.text


async def test_a_password_change_ends_every_session(client, sign_up, tokens):
    """Before: after PATCH /users/me changed the password, the old access token still read
    /users/me (200) and the old refresh token still got a new pair (200), for up to 14 days.
    After: both 401, in this session and in another one; the new password signs in."""
    user = await sign_up()
    laptop, phone = await tokens(user["email"]), await tokens(user["email"])

    await change_password(client, laptop["access_token"])

    for pair in (laptop, phone):
        old_access = await client.get(ME_URL, headers=bearer(pair["access_token"]))
        assert_problem(old_access, 401, "invalid_token")
        assert (await refresh(client, pair["refresh_token"])).status_code == 401
    fresh = await tokens(user["email"], NEW_PASSWORD)
    assert (await client.get(ME_URL, headers=bearer(fresh["access_token"]))).status_code == 200
    assert (await refresh(client, fresh["refresh_token"])).status_code == 200


async def test_a_password_reset_by_a_superuser_ends_the_users_sessions(
    client, sign_up, tokens, superuser_headers
):
    user = await sign_up()
    pair = await tokens(user["email"])

    response = await client.patch(
        f"/api/v1/users/{user['id']}", json={"password": NEW_PASSWORD}, headers=superuser_headers
    )
    assert response.status_code == 200, response.text

    assert_problem(
        await client.get(ME_URL, headers=bearer(pair["access_token"])), 401, "invalid_token"
    )
    assert (await refresh(client, pair["refresh_token"])).status_code == 401
    assert (await client.get(ME_URL, headers=superuser_headers)).status_code == 200


async def test_other_changes_leave_sessions_alone(client, sign_up, tokens):
    user = await sign_up()
    pair = await tokens(user["email"])

    response = await client.patch(
        ME_URL, json={"name": "Renamed"}, headers=bearer(pair["access_token"])
    )
    assert response.status_code == 200, response.text

    assert (await client.get(ME_URL, headers=bearer(pair["access_token"]))).status_code == 200


async def test_logout_ends_the_sessions_access_tokens_and_only_that_sessions(
    client, sign_up, tokens
):
    """Before: after POST /auth/logout the session's access token still worked (200) until it
    expired (15 min). After: 401, for the token of the login and for one from a refresh of
    the same session; another session of the same user keeps working."""
    user = await sign_up()
    laptop, phone = await tokens(user["email"]), await tokens(user["email"])
    rotated = (await refresh(client, laptop["refresh_token"])).json()

    response = await client.post(LOGOUT_URL, json={"refresh_token": rotated["refresh_token"]})
    assert response.status_code == 204, response.text

    for access in (laptop["access_token"], rotated["access_token"]):
        assert_problem(await client.get(ME_URL, headers=bearer(access)), 401, "invalid_token")
    assert (await client.get(ME_URL, headers=bearer(phone["access_token"]))).status_code == 200


async def test_a_login_right_after_a_password_change_is_not_caught_by_it(client, sign_up, tokens):
    """The cut-off is to the microsecond: a token issued in the same second as the change,
    after it, works."""
    user = await sign_up()
    for _ in range(3):
        pair = await tokens(user["email"])
        await change_password(client, pair["access_token"])
        fresh = await post_login(client, user["email"], NEW_PASSWORD)
        assert fresh.status_code == 200, fresh.text
        me = await client.get(ME_URL, headers=bearer(fresh.json()["access_token"]))
        assert me.status_code == 200, me.text
        body = {"password": PASSWORD, "current_password": NEW_PASSWORD}
        back = await client.patch(ME_URL, json=body, headers=bearer(fresh.json()["access_token"]))
        assert back.status_code == 200, back.text
