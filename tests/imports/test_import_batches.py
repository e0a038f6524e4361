"""How batches are written, with the same verdicts on both databases: on PostgreSQL a COPY
straight into users while no email is taken, else a COPY into a staging table then one
INSERT ... SELECT per batch (app/imports/pg_copy.py), on SQLite one multi-row INSERT ...
RETURNING. Duplicates inside a batch, across batches and against existing
users; `abort` rolling back batches already written; `skip` keeping the good rows; balance
credits; bad rows by line. Run with TEST_DATABASE_URL for PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from app.core.db import utcnow
from app.imports.fast_rows import ParsedRow
from app.imports.pg_copy import CopyWriter
from app.users.models import User
from app.wallet.models import Transaction
from tests.conftest import ON_POSTGRES, SignUp, require_postgres
from tests.imports.conftest import RunImport
from tests.imports.test_import_users import ledger, users_by_email

EXISTS = "a user with this email already exists"


def csv(lines: list[str], header: str = "email,name,age,balance") -> bytes:
    return "\r\n".join([header, *lines]).encode() + b"\r\n"


def found(result: dict[str, Any]) -> list[tuple[int, str | None]]:
    return [(error["line"], error["column"]) for error in result["errors"]]


async def test_postgresql_writes_through_copy_and_sqlite_row_by_row(
    run_import: RunImport, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    insert = CopyWriter.insert

    async def counted(self: CopyWriter, records: Any, **kwargs: Any) -> list[int]:
        batches.append(len(records))
        return await insert(self, records, **kwargs)

    monkeypatch.setattr(CopyWriter, "insert", counted)
    job = await run_import(csv([f"c{i}@example.com,C {i},," for i in range(2500)]))
    assert job["result"] == {"imported": 2500, "rejected": 0, "errors": []}
    assert batches == ([1000, 1000, 500] if ON_POSTGRES else [])


async def test_skip_reports_every_kind_of_duplicate_and_credits_only_new_users(
    app: FastAPI, run_import: RunImport, sign_up: SignUp
) -> None:
    await sign_up(email="taken@example.com")
    batch_1 = ["Taken@Example.com,Again,,5.00"]  # line 2: an existing user
    batch_1 += [f"u{i}@example.com,U {i},,{'1.00' if i % 2 == 0 else ''}" for i in range(999)]
    batch_2 = [
        "u5@example.com,Again,,3.00",  # 1002: a row of batch 1
        "new1@example.com,New One,,2.50",  # 1003
        "NEW1@example.com,New One Again,,",  # 1004: the row above
        "bad-email,Bad,,",  # 1005
        "ok@example.com,Old,200,",  # 1006
        'quoted@example.com,"Multi\nLine",,',  # 1007-1008
        "u998@example.com,Again,,",  # 1009: the last row of batch 1
    ]
    filler = [f"v{j}@example.com,V {j},,{'0.01' if j % 100 == 0 else ''}" for j in range(1200)]
    job = await run_import(csv(batch_1 + batch_2 + filler), on_error="skip")

    assert job["status"] == "succeeded", job
    result = job["result"]
    assert (result["imported"], result["rejected"]) == (999 + 2 + 1200, 6)
    assert found(result) == [
        (2, "email"),
        (1002, "email"),
        (1004, "email"),
        (1005, "email"),
        (1006, "age"),
        (1009, "email"),
    ]
    messages = {error["line"]: error["message"] for error in result["errors"]}
    assert messages[2] == messages[1002] == messages[1009] == EXISTS
    assert messages[1004] == "duplicate email (also on line 1003)"
    assert "not a valid email" in messages[1005]

    users = await users_by_email(app)
    assert len(users) == 1 + 999 + 2 + 1200
    assert users["taken@example.com"].name == "Test User"
    assert users["taken@example.com"].balance_minor == 0
    assert (users["u5@example.com"].name, users["u5@example.com"].balance_minor) == ("U 5", 0)
    assert users["u4@example.com"].balance_minor == 100
    assert users["quoted@example.com"].name == "Multi\nLine"
    assert users["new1@example.com"].name == "New One"
    # Ids in file order, as the row-by-row insert gives them.
    assert users["u0@example.com"].id < users["u998@example.com"].id < users["v0@example.com"].id
    credits = 500 * 100 + 250 + 12 * 1
    assert await ledger(app) == (credits, credits, 500 + 1 + 12)
    async with app.state.db.sessionmaker() as session:
        credit = (
            await session.execute(
                select(Transaction.amount_minor, Transaction.balance_after_minor).where(
                    Transaction.user_id == users["new1@example.com"].id
                )
            )
        ).one()
    assert tuple(credit) == (250, 250)


async def test_abort_rolls_back_batches_already_written_and_the_next_import_works(
    app: FastAPI, run_import: RunImport
) -> None:
    rows = [f"w{i}@example.com,W {i},,1.00" for i in range(2500)]
    rows[2398] = "not-an-email,Bad,,1.00"  # line 2400, in the third batch
    job = await run_import(csv(rows))
    assert job["status"] == "failed"
    assert job["result"]["imported"] == 0
    assert job["result"]["rejected"] == 1
    assert found(job["result"]) == [(2400, "email")]
    assert await users_by_email(app) == {}
    assert await ledger(app) == (0, 0, 0)

    # The staging table went with the rollback, and goes with a commit: imports keep working.
    for attempt in range(2):
        clean = [f"x{attempt}-{i}@example.com,X,,0.50" for i in range(1500)]
        job = await run_import(csv(clean))
        assert job["result"] == {"imported": 1500, "rejected": 0, "errors": []}
    assert await ledger(app) == (3000 * 50, 3000 * 50, 3000)


async def test_abort_stops_writing_at_the_first_rejected_row(
    app: FastAPI, run_import: RunImport, sign_up: SignUp
) -> None:
    await sign_up(email="taken@example.com")
    rows = [f"a{i}@example.com,A {i},," for i in range(2099)]
    rows[498] = "taken@example.com,Taken,,"  # line 500, batch 1: found by the database
    rows[1498] = "a0@example.com,Repeat,,"  # line 1500, batch 2: not written, so not found
    rows[1598] = "late@example.com,Late,151,"  # line 1600, batch 2: the reader's
    job = await run_import(csv(rows))
    assert job["status"] == "failed"
    result = job["result"]
    assert (result["imported"], result["rejected"]) == (0, 2)
    assert found(result) == [(500, "email"), (1600, "age")]
    assert result["errors"][0]["message"] == EXISTS
    assert sorted(await users_by_email(app)) == ["taken@example.com"]


async def test_passwords_go_through_the_same_writer(
    app: FastAPI, run_import: RunImport, sign_up: SignUp
) -> None:
    await sign_up(email="taken@example.com")
    content = csv(
        [
            "pw@example.com,With,,first-password,",
            "nopw@example.com,Without,,,1.00",
            "taken@example.com,Again,,other-password,",
        ],
        header="email,name,age,password,balance",
    )
    job = await run_import(content, on_error="skip")
    assert found(job["result"]) == [(4, "email")]
    users = await users_by_email(app)
    hashed = users["pw@example.com"].hashed_password
    assert hashed.startswith("$argon2")
    assert hashed != users["nopw@example.com"].hashed_password
    assert users["taken@example.com"].name == "Test User"


# --- the PostgreSQL writer on its own --------------------------------------------------------


async def test_the_copy_writer_answers_duplicates_and_drops_its_table(app: FastAPI) -> None:
    require_postgres()
    engine = app.state.db.engine
    async with engine.connect() as connection:
        writer = CopyWriter(connection, credit_description="test")
        first = [
            ParsedRow(2, "a@example.com", "A", 30, None, 150),
            ParsedRow(3, "z@example.com", "Z", None, None, None),
        ]
        assert await writer.insert(first, now=utcnow(), unusable_hash="!") == []
        assert writer.straight_in  # no email taken: copied straight into users
        second = [
            ParsedRow(4, "b@example.com", "B", None, "$argon2id$stand-in", None),
            ParsedRow(5, "a@example.com", "A again", None, None, 99),
        ]
        # a@ is taken: that COPY fails, its savepoint goes, the batch goes through staging.
        assert await writer.insert(second, now=utcnow(), unusable_hash="!") == [5]
        assert not writer.straight_in
        assert await writer.insert([ParsedRow(6, "c@example.com", "C", None, None, 7)],
                                   now=utcnow(), unusable_hash="!") == []  # fmt: skip
        await connection.commit()
        staging = text("SELECT to_regclass('pg_temp.import_rows')")
        assert await connection.scalar(staging) is None
        users = {
            user.email: user
            for user in (await connection.execute(select(User).order_by(User.id))).all()
        }
        assert list(users) == ["a@example.com", "z@example.com", "b@example.com", "c@example.com"]
        assert (users["a@example.com"].name, users["a@example.com"].balance_minor) == ("A", 150)
        assert (users["a@example.com"].is_active, users["a@example.com"].is_superuser) == (
            True,
            False,
        )
        assert users["a@example.com"].hashed_password == users["z@example.com"].hashed_password
        assert users["a@example.com"].hashed_password == "!"
        assert users["b@example.com"].hashed_password == "$argon2id$stand-in"
        credits = select(Transaction.user_id, Transaction.amount_minor, Transaction.kind)
        assert sorted(tuple(row) for row in await connection.execute(credits)) == [
            (users["a@example.com"].id, 150, "import_credit"),
            (users["c@example.com"].id, 7, "import_credit"),
        ]

        writer = CopyWriter(connection, credit_description="test")
        await writer.insert([ParsedRow(2, "d@example.com", "C", None, None, None)], now=utcnow(),
                            unusable_hash="!")  # fmt: skip
        await connection.rollback()
        assert await connection.scalar(staging) is None
        assert await connection.scalar(select(User.id).where(User.email == "d@example.com")) is None
