"""DELETE /users/{id} (issue #15, item 6): the ledger is never rewritten. A user with money
cannot be deleted; otherwise the account is deactivated and anonymised, its sessions end, its
files and their bytes are deleted, and its transactions stay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from app.core.settings import Settings
from app.files.models import StoredFile
from app.users.models import User
from app.wallet.models import Transaction
from tests.conftest import PASSWORD, make_settings
from tests.users.conftest import assert_problem

USERS = "/api/v1/users"
CARD = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvv": "123"}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url, storage_dir=tmp_path / "files", email_outbox_dir=tmp_path / "outbox"
    )


async def fund(client: AsyncClient, headers: dict[str, str], amount: str) -> None:
    body = {"amount": amount, "card": CARD}
    response = await client.post("/api/v1/wallet/top-ups", json=body, headers=headers)
    assert response.status_code == 201, response.text


async def pay(client: AsyncClient, headers: dict[str, str], payee_id: int, amount: str) -> None:
    body = {"payee_id": payee_id, "amount": amount}
    response = await client.post("/api/v1/payments", json=body, headers=headers)
    assert response.status_code == 201, response.text


async def count(app: FastAPI, model: Any, **where: Any) -> int:
    async with app.state.db.sessionmaker() as session:
        query = select(func.count()).select_from(model).filter_by(**where)
        return int(await session.scalar(query) or 0)


async def stored_files(root: Path) -> list[Path]:
    def walk() -> list[Path]:
        return [path for path in root.rglob("*") if path.is_file()]

    return await anyio.to_thread.run_sync(walk)


@pytest.fixture
async def ann(sign_up, login) -> tuple[dict[str, Any], dict[str, str]]:
    user = await sign_up(email="ann@example.com", name="Ann", age=30)
    return user, await login("ann@example.com")


async def test_a_user_with_a_balance_cannot_be_deleted(
    client, app, ann, superuser_headers, user_row
) -> None:
    """Before: 204, and the user's rows went with them (balances no longer summed to the
    credits, one transfer was left with a single side). After: 409 `balance_not_zero`, and
    nothing changed."""
    user, headers = ann
    await fund(client, headers, "5.00")

    response = await client.delete(f"{USERS}/{user['id']}", headers=superuser_headers)

    assert_problem(response, 409, "balance_not_zero")
    row = await user_row("ann@example.com")
    assert row is not None
    assert row.is_active
    assert row.balance_minor == 500
    assert (await client.get(f"{USERS}/me", headers=headers)).status_code == 200


async def test_deleting_anonymises_keeps_the_ledger_and_deletes_the_files(
    client, app, ann, sign_up, login, superuser_headers, settings
) -> None:
    """Before: the user's transactions were deleted with them and their uploaded files stayed
    on disk. After: the account is inactive and anonymised (email, name, age), its tokens no
    longer work, both sides of its payment stay, and its files and their bytes are gone."""
    user, headers = ann
    bob = await sign_up(email="bob@example.com")
    await fund(client, headers, "5.00")
    await pay(client, headers, bob["id"], "5.00")  # Ann's balance is back to zero
    upload = await client.post(
        "/api/v1/files",
        files={"file": ("notes.txt", b"private notes", "text/plain")},
        headers=headers,
    )
    assert upload.status_code == 201, upload.text
    assert len(await stored_files(settings.storage_dir)) == 1

    response = await client.delete(f"{USERS}/{user['id']}", headers=superuser_headers)

    assert response.status_code == 204, response.text
    async with app.state.db.sessionmaker() as session:
        row = await session.get(User, user["id"])
    assert row is not None
    assert not row.is_active
    assert "ann" not in row.email.lower()
    assert row.name != "Ann"
    assert row.age is None
    assert await count(app, Transaction, user_id=user["id"]) == 2  # top-up, payment sent
    assert await count(app, Transaction, user_id=bob["id"]) == 1  # payment received
    assert await count(app, StoredFile, owner_id=user["id"]) == 0
    assert await stored_files(settings.storage_dir) == []
    me = await client.get(f"{USERS}/me", headers=headers)
    assert_problem(me, 401, "invalid_token")
    login_again = await client.post(
        "/api/v1/auth/token", data={"username": "ann@example.com", "password": PASSWORD}
    )
    assert_problem(login_again, 401, "invalid_credentials")
    # The email is free again.
    assert (await sign_up(email="ann@example.com"))["id"] != user["id"]


async def test_a_superuser_cannot_delete_itself(client, superuser_headers) -> None:
    """Before: 204, and the superuser was gone. After: 409 `cannot_delete_self`."""
    me = (await client.get(f"{USERS}/me", headers=superuser_headers)).json()

    response = await client.delete(f"{USERS}/{me['id']}", headers=superuser_headers)

    assert_problem(response, 409, "cannot_delete_self")
    assert (await client.get(f"{USERS}/me", headers=superuser_headers)).status_code == 200


async def test_payments_to_a_deleted_user_are_refused(
    client, ann, sign_up, login, superuser_headers
) -> None:
    user, _ = ann
    payer = await sign_up()
    payer_headers = await login(payer["email"])
    await fund(client, payer_headers, "5.00")
    await client.delete(f"{USERS}/{user['id']}", headers=superuser_headers)

    body = {"payee_id": user["id"], "amount": "1.00"}
    response = await client.post("/api/v1/payments", json=body, headers=payer_headers)

    assert_problem(response, 404, "payee_not_found")
