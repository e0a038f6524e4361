"""Access tokens on a protected route (GET /users/me): only a genuine, live HS256 access token
of an existing, active user gets in; everything else is 401 with WWW-Authenticate: Bearer."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from tests.auth.conftest import ME_URL, assert_problem, bearer

OTHER_KEY = "another-secret-of-the-right-length-" + "k" * 32
DROP = object()


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(user_id: int, **changes: Any) -> dict[str, Any]:
    """Claims as the service issues them; a change to DROP removes that claim."""
    now = int(time.time())
    values = {
        "sub": str(user_id),
        "type": "access",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    values.update(changes)
    return {key: value for key, value in values.items() if value is not DROP}


def signed(secret: str, user_id: int, **changes: Any) -> str:
    return jwt.encode(claims(user_id, **changes), secret, algorithm="HS256")


def alg_none(secret: str, user_id: int) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims(user_id))}."


def alg_none_keeping_a_real_signature(secret: str, user_id: int) -> str:
    _, payload, signature = signed(secret, user_id).split(".")
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.{signature}"


def tampered_expiry(secret: str, user_id: int) -> str:
    header, _, signature = signed(secret, user_id).split(".")
    longer = claims(user_id, exp=int(time.time()) + 10**7)
    return f"{header}.{_b64(longer)}.{signature}"


FORGERIES: dict[str, Callable[[str, int], str]] = {
    "alg_none": alg_none,
    "alg_none_keeping_a_real_signature": alg_none_keeping_a_real_signature,
    "alg_hs512": lambda secret, uid: jwt.encode(claims(uid), secret, algorithm="HS512"),
    "signed_with_another_key": lambda secret, uid: signed(OTHER_KEY, uid),
    "tampered_expiry": tampered_expiry,
    "missing_exp": lambda secret, uid: signed(secret, uid, exp=DROP),
    "missing_sub": lambda secret, uid: signed(secret, uid, sub=DROP),
    "missing_type": lambda secret, uid: signed(secret, uid, type=DROP),
    "expired_beyond_leeway": lambda secret, uid: signed(
        secret, uid, iat=int(time.time()) - 960, exp=int(time.time()) - 60
    ),
    "refresh_type": lambda secret, uid: signed(secret, uid, type="refresh"),
    "non_numeric_sub": lambda secret, uid: signed(secret, uid, sub="abc"),
    "negative_sub": lambda secret, uid: signed(secret, uid, sub="-1"),
    "integer_sub": lambda secret, uid: signed(secret, uid, sub=uid),
    "zero_sub": lambda secret, uid: signed(secret, uid, sub="0"),
    "sub_with_non_ascii_digits": lambda secret, uid: signed(secret, uid, sub="\u0661"),
    "sub_with_superscript_digit": lambda secret, uid: signed(secret, uid, sub="\u00b2"),
    "sub_beyond_bigint": lambda secret, uid: signed(secret, uid, sub=str(2**63)),
    "not_a_jwt": lambda secret, uid: "not-a-jwt",
    "truncated": lambda secret, uid: signed(secret, uid).rsplit(".", 1)[0],
}


async def test_well_formed_token_signed_with_the_secret_is_accepted(client, sign_up, settings):
    # The control for the forgeries below: the same builder, nothing wrong with it.
    user = await sign_up()

    response = await client.get(ME_URL, headers=bearer(signed(settings.secret, user["id"])))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == user["id"]


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
async def test_forged_or_broken_token_is_401(client, sign_up, settings, forge):
    user = await sign_up()

    response = await client.get(ME_URL, headers=bearer(forge(settings.secret, user["id"])))

    assert_problem(response, 401, "invalid_token")
    assert user["email"] not in response.text


async def test_token_with_subject_swapped_to_a_superuser_is_401(
    client, sign_up, login, superuser_headers
):
    user = await sign_up()
    header, _, signature = (await login(user["email"]))["Authorization"].split()[1].split(".")
    admin = (await client.get(ME_URL, headers=superuser_headers)).json()
    assert admin["is_superuser"] is True

    forged = f"{header}.{_b64(claims(admin['id']))}.{signature}"
    response = await client.get("/api/v1/users", headers=bearer(forged))

    assert_problem(response, 401, "invalid_token")


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"],
    ids=["absent", "empty", "bearer_without_token", "bearer_blank", "basic", "other_scheme"],
)
async def test_missing_or_non_bearer_credentials_are_401(client, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await client.get(ME_URL, headers=headers)

    assert_problem(response, 401, "not_authenticated")


async def test_basic_credentials_of_a_real_user_do_not_authenticate(client, sign_up):
    user = await sign_up()
    basic = base64.b64encode(f"{user['email']}:correct horse battery".encode()).decode()

    response = await client.get(ME_URL, headers={"Authorization": f"Basic {basic}"})

    assert_problem(response, 401, "not_authenticated")


async def test_token_of_a_deleted_user_is_401(client, sign_up, login, superuser_headers):
    user = await sign_up()
    headers = await login(user["email"])
    deleted = await client.delete(f"/api/v1/users/{user['id']}", headers=superuser_headers)
    assert deleted.status_code == 204

    response = await client.get(ME_URL, headers=headers)

    assert_problem(response, 401, "invalid_token")


async def test_token_for_a_user_id_that_never_existed_is_401(client, settings):
    response = await client.get(ME_URL, headers=bearer(signed(settings.secret, 987_654_321)))

    assert_problem(response, 401, "invalid_token")
