"""POST /imports/users: a CSV streamed to storage and imported by a job, row by row, with row
errors (line, column, message) for everything wrong with a row, `abort` importing nothing when
one row is bad, `skip` importing the good ones, and balances credited through the ledger."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from app.users.models import User
from app.wallet.models import Transaction
from tests.conftest import PASSWORD, Login, SignUp
from tests.files.conftest import stored_objects
from tests.imports.conftest import IMPORTS, PostCsv, RunImport


async def users_by_email(app: FastAPI) -> dict[str, User]:
    async with app.state.db.sessionmaker() as session:
        rows = (await session.scalars(select(User).where(User.is_superuser.is_(False)))).all()
        return {user.email: user for user in rows}


async def ledger(app: FastAPI) -> tuple[int, int, int]:
    """(sum of balances, sum of import credits, number of import credits)."""
    async with app.state.db.sessionmaker() as session:
        balances = await session.scalar(select(func.coalesce(func.sum(User.balance_minor), 0)))
        credits, count = (
            await session.execute(
                select(func.coalesce(func.sum(Transaction.amount_minor), 0), func.count()).where(
                    Transaction.kind == "import_credit"
                )
            )
        ).one()
        return int(balances or 0), int(credits), int(count)


async def test_a_clean_file_is_imported_with_credits_and_passwords(
    app: FastAPI, run_import: RunImport, client: AsyncClient, login: Login
) -> None:
    content = (
        "\ufeffemail,name,age,password,balance\r\n"
        "Ada@Example.com,Ada Lovelace,36,first-password,12.50\r\n"
        'bob@example.com,"Builder, Bob",,,\r\n'
        'cleo@example.com,"Cleo ""the"" Cat",7,,0.01\r\n'
        '"dee@example.com","Dee\nTwo Lines",,,1000000\r\n'
        "\r\n"
        "eve@example.com,\u00c8ve \u00e9l\u00e9gante,,,"  # no final newline
    ).encode()
    job = await run_import(content)
    assert job["status"] == "succeeded", job
    assert job["result"] == {"imported": 5, "rejected": 0, "errors": []}
    assert job["progress"] == 100

    users = await users_by_email(app)
    assert sorted(users) == [
        "ada@example.com",
        "bob@example.com",
        "cleo@example.com",
        "dee@example.com",
        "eve@example.com",
    ]
    assert users["ada@example.com"].age == 36
    assert users["bob@example.com"].name == "Builder, Bob"
    assert users["cleo@example.com"].name == 'Cleo "the" Cat'
    assert users["dee@example.com"].name == "Dee\nTwo Lines"
    assert users["eve@example.com"].name == "\u00c8ve \u00e9l\u00e9gante"
    assert users["ada@example.com"].balance_minor == 1250
    assert users["dee@example.com"].balance_minor == 100_000_000
    assert users["bob@example.com"].balance_minor == 0
    assert await ledger(app) == (1250 + 1 + 100_000_000, 1250 + 1 + 100_000_000, 3)

    # A row with a password can sign in, and sees its credit; one without cannot sign in.
    headers = await login("ada@example.com", "first-password")
    wallet = await client.get("/api/v1/wallet", headers=headers)
    assert wallet.json()["balance"] == "12.50"
    transactions = await client.get("/api/v1/transactions", headers=headers)
    [credit] = transactions.json()["items"]
    assert (credit["kind"], credit["amount"], credit["balance_after"]) == (
        "import_credit",
        "12.50",
        "12.50",
    )
    refused = await client.post(
        "/api/v1/auth/token", data={"username": "bob@example.com", "password": PASSWORD}
    )
    assert refused.status_code == 401


async def test_abort_imports_nothing_and_lists_the_errors(
    app: FastAPI, run_import: RunImport
) -> None:
    content = (
        b"email,name,age,balance\n"
        b"good@example.com,Good,30,5.00\n"
        b"not-an-email,Bad Email,30,\n"
        b"old@example.com,Too Old,151,\n"
        b"cheap@example.com,Cheap,,0.001\n"
        b"also-good@example.com,Also Good,,\n"
    )
    job = await run_import(content)  # on_error=abort is the default
    assert job["status"] == "failed"
    assert "nothing was imported" in job["error"]
    result = job["result"]
    assert result["imported"] == 0
    assert result["rejected"] == 3
    assert [(e["line"], e["column"]) for e in result["errors"]] == [
        (3, "email"),
        (4, "age"),
        (5, "balance"),
    ]
    assert await users_by_email(app) == {}
    assert await ledger(app) == (0, 0, 0)


async def test_skip_imports_the_good_rows_and_reports_duplicates(
    app: FastAPI, run_import: RunImport, sign_up: SignUp
) -> None:
    await sign_up(email="taken@example.com")
    content = (
        b"email,name\n"
        b"one@example.com,One\n"
        b"TAKEN@example.com,Already There\n"
        b"two@example.com,Two\n"
        b"One@Example.com,One Again\n"
        b"three@example.com,\n"
        b"four@example.com,Four,extra\n"
        b"five@example.com\n"
    )
    job = await run_import(content, on_error="skip")
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["imported"] == 2
    assert result["rejected"] == 5
    errors = {e["line"]: e for e in result["errors"]}
    assert sorted(errors) == [3, 5, 6, 7, 8]
    assert errors[3]["column"] == "email"
    assert "already exists" in errors[3]["message"]
    assert errors[5]["column"] == "email"
    assert "line 2" in errors[5]["message"]
    assert errors[6]["column"] == "name"
    assert errors[7]["message"] == "expected 2 fields, found 3"
    assert errors[8]["message"] == "expected 2 fields, found 1"
    users = await users_by_email(app)
    assert sorted(users) == ["one@example.com", "taken@example.com", "two@example.com"]
    assert users["taken@example.com"].name == "Test User"  # untouched


async def test_duplicates_across_batches_and_the_error_cap(
    app: FastAPI, run_import: RunImport
) -> None:
    # 2500 rows (three batches); every row after the first 1200 repeats an earlier email.
    lines = [b"email,name"]
    lines += [f"user{i}@example.com,User {i}".encode() for i in range(1200)]
    lines += [f"user{i % 1200}@example.com,Again {i}".encode() for i in range(1300)]
    job = await run_import(b"\n".join(lines), on_error="skip")
    result = job["result"]
    assert (result["imported"], result["rejected"]) == (1200, 1300)
    assert len(result["errors"]) == 100
    assert result["errors"][0]["line"] == 1202
    assert len(await users_by_email(app)) == 1200


@pytest.mark.parametrize("on_error", ["abort", "skip"])
async def test_row_level_malformations_are_row_errors(
    app: FastAPI, run_import: RunImport, on_error: str
) -> None:
    huge = b"x" * (10 * 1024 * 1024)
    content = (
        b"email,name\n"
        b"ok1@example.com,Fine\n"
        b"latin@example.com,Ren\xe9e\n"  # Latin-1, not UTF-8
        b"long@example.com," + huge + b"\n"  # a 10 MiB line
        b"ok2@example.com,Fine Too\n"
        b'quote@example.com,"bad"quote\n'
        b"\xff\xfe\x00garbage\n"
        b"ok3@example.com,Last\n"
    )
    job = await run_import(content, on_error=on_error)
    result = job["result"]
    lines = sorted(e["line"] for e in result["errors"])
    assert lines == [3, 4, 6, 7], result
    messages = {e["line"]: e["message"] for e in result["errors"]}
    assert "UTF-8" in messages[3]
    assert "longer than" in messages[4]
    if on_error == "abort":
        assert job["status"] == "failed"
        assert result["imported"] == 0
        assert await users_by_email(app) == {}
    else:
        assert job["status"] == "succeeded"
        assert result["imported"] == 3
        assert result["rejected"] == 4
        assert sorted(await users_by_email(app)) == [
            "ok1@example.com",
            "ok2@example.com",
            "ok3@example.com",
        ]


async def test_a_character_cut_by_a_read_chunk_boundary_survives(
    app: FastAPI, run_import: RunImport
) -> None:
    from app.imports.service import READ_CHUNK_BYTES

    header = b"email,name\n"
    filler = b"".join(f"f{i:06d}@example.com,Filler\n".encode() for i in range(20_000))
    # Place the two bytes of "\u00e9" (c3 a9) on either side of the first chunk boundary.
    prefix = header + filler[: READ_CHUNK_BYTES - len(header) - len(b"cut@example.com,Ren") - 1]
    prefix = prefix[: prefix.rfind(b"\n") + 1]
    pad = READ_CHUNK_BYTES - len(prefix) - len(b"cut@example.com,Ren") - 1
    row = b"cut@example.com,Ren" + b"e" * pad + "\u00e9e\n".encode()
    content = prefix + row
    assert content[READ_CHUNK_BYTES - 1 : READ_CHUNK_BYTES + 1] == "\u00e9".encode()
    job = await run_import(content)
    assert job["status"] == "succeeded", job
    users = await users_by_email(app)
    assert users["cut@example.com"].name.endswith("\u00e9e")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\r\n\r\n", "empty"),
        (b"email,age\nx@example.com,3\n", "missing column(s) name"),
        (b"email,name,nickname\n", "unknown column"),
        (b"email,name,email\n", "more than once"),
        ("email,name\n".encode("utf-16"), "UTF-8"),
        (b"email,na\xe9me\n", "UTF-8"),
        (b"x" * (10 * 1024 * 1024), "longer than"),
    ],
)
async def test_a_file_without_a_usable_header_is_422_and_not_kept(
    app: FastAPI, post_csv: PostCsv, storage_dir: Path, content: bytes, message: str
) -> None:
    response = await post_csv(content)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_csv"
    assert message in response.json()["detail"]
    assert await stored_objects(storage_dir) == []


async def test_a_header_only_file_imports_nothing(run_import: RunImport) -> None:
    job = await run_import(b"email,name,age,password,balance\r\n")
    assert job["status"] == "succeeded"
    assert job["result"] == {"imported": 0, "rejected": 0, "errors": []}


async def test_only_a_superuser_may_import(
    app: FastAPI,
    client: AsyncClient,
    post_csv: PostCsv,
    user_headers: dict[str, str],
    storage_dir: Path,
) -> None:
    assert (await post_csv(b"email,name\n", headers=user_headers)).status_code == 403
    assert (await post_csv(b"email,name\n", headers={})).status_code == 401
    assert await stored_objects(storage_dir) == []


async def test_an_unknown_on_error_is_422(post_csv: PostCsv, storage_dir: Path) -> None:
    response = await post_csv(b"email,name\n", on_error="ignore")
    assert response.status_code == 422
    assert await stored_objects(storage_dir) == []


async def test_an_upload_over_the_limit_is_413(
    client: AsyncClient, superuser_headers: dict[str, str]
) -> None:
    from tests.files.conftest import multipart
    from tests.imports.conftest import UPLOAD_LIMIT

    body = multipart(filename="users.csv")
    response = await client.post(
        IMPORTS,
        content=body.body(b"email,name\n" + b"a@example.com,A\n" * (UPLOAD_LIMIT // 16)),
        headers=body.headers(None, **superuser_headers),
    )
    assert response.status_code == 413


def test_money_column_is_exact() -> None:
    from app.imports.csv_rows import UsersCsvReader

    [batch] = list(UsersCsvReader([b"email,name,balance\na@example.com,A,0.10\n"]).batches())
    assert batch.rows[0].balance_minor == 10
    assert Decimal("0.10") * 100 == batch.rows[0].balance_minor


async def test_abort_on_an_email_already_in_the_database(
    app: FastAPI, run_import: RunImport, sign_up: SignUp
) -> None:
    await sign_up(email="taken@example.com")
    content = b"email,name,balance\nnew@example.com,New,3.00\nTaken@Example.com,Again,1.00\n"
    job = await run_import(content)
    assert job["status"] == "failed"
    assert job["result"] == {
        "imported": 0,
        "rejected": 1,
        "errors": [
            {"line": 3, "column": "email", "message": "a user with this email already exists"}
        ],
    }
    assert sorted(await users_by_email(app)) == ["taken@example.com"]
    assert await ledger(app) == (0, 0, 0)
