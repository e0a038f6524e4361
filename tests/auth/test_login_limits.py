"""Login limits that hold under abuse (issue #15, item 8): strict per (email, client),
loose per email, per client; the client is the peer unless a trusted proxy forwarded it."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from tests.auth.conftest import assert_problem, post_login, with_settings
from tests.auth.test_rate_limit import WRONG, assert_rate_limited, fail
from tests.conftest import PASSWORD, make_settings
from tests.e2e.conftest import StartServer, fresh_database, start_server

__all__ = ["fresh_database", "start_server"]  # fixtures of the real-server tier, used below

STRICT = 5  # make_settings' default for login_failures_per_email_and_client


def client_at(app: FastAPI, address: str) -> AsyncClient:
    """A client whose TCP peer address is `address`."""
    transport = ASGITransport(app=app, client=(address, 40_000))
    return AsyncClient(transport=transport, base_url="http://test")


async def test_an_attacker_cannot_lock_the_owner_out(app: FastAPI, client, sign_up) -> None:
    """Before: 5 failures from anyone locked the owner's correct password out (429).
    After: the attacker's client is limited, the owner's is not."""
    user = await sign_up()
    async with client_at(app, "203.0.113.66") as attacker, client_at(app, "198.51.100.7") as owner:
        await fail(attacker, user["email"], STRICT)
        assert_rate_limited(await post_login(attacker, user["email"], PASSWORD))

        assert (await post_login(owner, user["email"], PASSWORD)).status_code == 200


@with_settings(login_failures_per_email="8/minute")
async def test_many_clients_guessing_one_email_are_stopped_by_the_loose_limit(
    app: FastAPI, sign_up
) -> None:
    """Distributed guessing: 4 clients x 2 failures use up the email's loose allowance (8), so
    the 9th guess, from a fifth client that never failed, is refused."""
    user = await sign_up()
    for number in range(4):
        async with client_at(app, f"203.0.113.{number + 1}") as guesser:
            await fail(guesser, user["email"], 2)
    async with client_at(app, "203.0.113.99") as fifth:
        assert_rate_limited(await post_login(fifth, user["email"], WRONG))


@with_settings(login_failures_per_client="3/minute")
async def test_a_forwarded_address_from_an_untrusted_peer_is_ignored(app: FastAPI) -> None:
    """Before: the per-client limit trusted X-Forwarded-For from any peer (40 failures with
    40 header values all got 401). After (FORWARDED_ALLOW_IPS empty): the 4th is a 429."""
    async with client_at(app, "203.0.113.50") as spoofer:
        for number in range(3):
            response = await spoofer.post(
                "/api/v1/auth/token",
                data={"username": f"{uuid.uuid4().hex[:8]}@example.com", "password": WRONG},
                headers={"X-Forwarded-For": f"192.0.2.{number}"},
            )
            assert_problem(response, 401, "invalid_credentials")
        response = await spoofer.post(
            "/api/v1/auth/token",
            data={"username": "x@example.com", "password": WRONG},
            headers={"X-Forwarded-For": "192.0.2.200"},
        )
    assert_rate_limited(response)


@with_settings(login_failures_per_client="3/minute", forwarded_allow_ips="10.0.0.0/8")
async def test_a_trusted_proxy_forwards_the_client_address(app: FastAPI) -> None:
    """Behind a proxy listed in FORWARDED_ALLOW_IPS, each forwarded address is its own
    client: 4 clients with one failure each are not limited together, and one client that
    fails 3 times is, even when the proxy prepends forged hops from the client."""
    async with client_at(app, "10.1.2.3") as proxy:
        for number in range(4):
            response = await proxy.post(
                "/api/v1/auth/token",
                data={"username": f"{uuid.uuid4().hex[:8]}@example.com", "password": WRONG},
                headers={"X-Forwarded-For": f"198.51.100.{number}"},
            )
            assert_problem(response, 401, "invalid_credentials")
        for forged in ("1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"):
            response = await proxy.post(
                "/api/v1/auth/token",
                data={"username": f"{uuid.uuid4().hex[:8]}@example.com", "password": WRONG},
                # The client sent the first value; the proxy appended the real peer.
                headers={"X-Forwarded-For": f"{forged}, 198.51.100.77"},
            )
    assert_rate_limited(response)


def test_forwarded_allow_ips_takes_addresses_and_networks_only(database_url: str) -> None:
    assert make_settings(database_url).forwarded_allow_ips == []
    with pytest.raises(ValueError, match="FORWARDED_ALLOW_IPS"):
        make_settings(database_url, forwarded_allow_ips="*")


async def test_the_real_server_ignores_forwarded_headers_by_default(
    start_server: StartServer, fresh_database: str
) -> None:
    """`python -m app serve` (uvicorn), spoken to from 127.0.0.1 with a new X-Forwarded-For
    each time. Before: uvicorn trusted the header from 127.0.0.1, so every failure counted for
    another client (40 of 40 were 401). After: FORWARDED_ALLOW_IPS is empty, the 4th failure
    from the one real peer is a 429."""
    server = await start_server(fresh_database, LOGIN_FAILURES_PER_CLIENT="3/minute")
    async with server.client() as http:
        statuses = []
        for number in range(4):
            response = await http.post(
                "/api/v1/auth/token",
                data={"username": f"{uuid.uuid4().hex[:8]}@example.com", "password": WRONG},
                headers={"X-Forwarded-For": f"192.0.2.{number}"},
            )
            statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 429], statuses
