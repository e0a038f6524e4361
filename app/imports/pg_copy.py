"""PostgreSQL's way in for a batch of imported users: COPY, straight into `users` while no
email is taken, else through a staging table and one set-based INSERT.

Every COPY is asyncpg's binary `copy_records_to_table`, on the driver connection under the
import's SQLAlchemy connection, so inside the import's transaction.

Straight in: the batch is copied into `users` inside a savepoint, and its balances become
ledger rows with one INSERT ... SELECT over the new users. PostgreSQL's COPY writes rows
and index entries in bulk: about half the time of an INSERT ... SELECT ... ON CONFLICT.
When an email of the batch is taken (by an existing user or a row of an earlier batch; the
reader refuses repeats inside a batch itself), the unique index fails the COPY, the savepoint
is rolled back, and this and every later batch of the import go the staging way.

Through staging: the batch goes into a TEMPORARY staging table, then one statement moves it:

    WITH created AS (INSERT INTO users (...) SELECT ... FROM import_rows ORDER BY line
                     ON CONFLICT (email) DO NOTHING RETURNING id, email, balance_minor),
         credits AS (INSERT INTO transactions (...) SELECT ... FROM created
                     WHERE balance_minor > 0)
    SELECT line FROM import_rows WHERE NOT EXISTS (SELECT FROM created
                                                   WHERE created.email = import_rows.email)
    ORDER BY line

It answers with the lines of the rows it did not insert: the duplicates. These are the
verdicts of the row-by-row path's `INSERT ... ON CONFLICT DO NOTHING RETURNING`, without
sending a million parameter sets. The staging table is created in the import's transaction
(ON COMMIT DROP: a rollback removes it too) and emptied before each batch, which is cheap:
PostgreSQL truncates a table created in the same transaction in place.

Either way ids follow the file's order, and a rollback of the import leaves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from asyncpg.exceptions import UniqueViolationError  # type: ignore[import-untyped]
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Table,
    Text,
    any_,
    false,
    func,
    insert,
    literal,
    select,
    text,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.expression import bindparam

from app.imports.fast_rows import ParsedRow
from app.users.models import User
from app.wallet.models import Transaction, TransactionKind

# Not in the app's metadata: no migration knows it, it lives for one transaction.
STAGING = Table(
    "import_rows",
    MetaData(),
    Column("line", Integer, nullable=False),
    Column("email", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("age", Integer),
    Column("hashed_password", Text),  # NULL: the import's unusable password
    Column("balance_minor", BigInteger),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
STAGING_COLUMNS = [column.name for column in STAGING.columns]
# The mapped classes' tables, typed as Core tables once for the statements below.
USERS: Table = User.__table__  # type: ignore[assignment]
TRANSACTIONS: Table = Transaction.__table__  # type: ignore[assignment]
# The columns a straight COPY into `users` fills; the others take their server defaults
# (is_active true, is_superuser false, no tokens_valid_after).
USER_COLUMNS = [
    "email", "hashed_password", "name", "age", "balance_minor", "created_at", "updated_at"
]  # fmt: skip


def _move_statement(credit_description: str) -> Any:
    now = bindparam("now", type_=USERS.c.created_at.type)
    created = (
        postgresql.insert(USERS)
        .from_select(
            [
                "email",
                "hashed_password",
                "name",
                "age",
                "is_active",
                "is_superuser",
                "balance_minor",
                "created_at",
                "updated_at",
            ],
            select(
                STAGING.c.email,
                func.coalesce(STAGING.c.hashed_password, bindparam("unusable_hash")),
                STAGING.c.name,
                STAGING.c.age,
                true(),
                false(),
                func.coalesce(STAGING.c.balance_minor, 0),
                now,
                now,
            ).order_by(STAGING.c.line),  # ids in file order, as the row-by-row path gives
        )
        .on_conflict_do_nothing(index_elements=[USERS.c.email])
        .returning(USERS.c.id, USERS.c.email, USERS.c.balance_minor)
        .cte("created")
    )
    credits = _insert_credits(
        created.c.id, created.c.balance_minor, credit_description, now, created.c.balance_minor > 0
    ).cte("credits")
    # NOT EXISTS, not NOT IN: an anti-join, where NOT IN is a hashed subplan only while the
    # batch's emails fit in work_mem, and a scan of `created` per row beyond.
    return (
        select(STAGING.c.line)
        .where(~select(created.c.email).where(created.c.email == STAGING.c.email).exists())
        .order_by(STAGING.c.line)
        .add_cte(credits)
    )


def _insert_credits(
    user_id: Any, balance_minor: Any, credit_description: str, now: Any, where: Any
) -> Any:
    """Ledger rows crediting new users their opening balance: they start at 0, so a credit's
    balance_after is its amount."""
    return insert(TRANSACTIONS).from_select(
        [
            "id",
            "user_id",
            "kind",
            "amount_minor",
            "balance_after_minor",
            "description",
            "created_at",
        ],
        select(
            func.gen_random_uuid(),
            user_id,
            literal(TransactionKind.IMPORT_CREDIT.value),
            balance_minor,
            balance_minor,
            literal(credit_description),
            now,
        ).where(where),
    )


def _credits_statement(credit_description: str) -> Any:
    """The ledger rows of the users just copied in whose email is in `emails`."""
    now = bindparam("now", type_=USERS.c.created_at.type)
    emails = bindparam("emails", type_=postgresql.ARRAY(Text))
    return _insert_credits(
        USERS.c.id, USERS.c.balance_minor, credit_description, now, USERS.c.email == any_(emails)
    )


class CopyWriter:
    """Writes batches of one import on the import's connection.

    First straight into `users` with COPY, inside a savepoint: a batch whose emails are all new
    (the common case) costs the COPY alone, plus one INSERT ... SELECT of its ledger rows. A
    batch with an email that is taken fails that COPY on the unique index; the savepoint is
    rolled back and the batch goes through the staging table, which answers which lines were
    duplicates, and so do the import's later batches (a file with one taken email usually has
    more, and a failed COPY costs the batch twice)."""

    def __init__(self, connection: AsyncConnection, *, credit_description: str) -> None:
        self.connection = connection
        self.move = _move_statement(credit_description)
        self.credits = _credits_statement(credit_description)
        self.straight_in = True
        self._staging = False  # the staging table exists
        self._driver: Any = None  # the asyncpg connection under `connection`

    async def insert(
        self, records: Sequence[ParsedRow], *, now: datetime, unusable_hash: str
    ) -> list[int]:
        """Insert `records` (their `password` a hash or None, emails distinct); returns the
        lines of those that were not inserted because their email is taken."""
        if self._driver is None:
            # The COPYs run on the asyncpg connection under the import's, in its transaction.
            raw = await self.connection.get_raw_connection()
            self._driver = raw.driver_connection
        if self.straight_in:
            try:
                async with self.connection.begin_nested():
                    await self._copy_into_users(records, now=now, unusable_hash=unusable_hash)
                return []
            except UniqueViolationError:
                self.straight_in = False
        return await self._through_staging(records, now=now, unusable_hash=unusable_hash)

    async def _copy_into_users(
        self, records: Sequence[ParsedRow], *, now: datetime, unusable_hash: str
    ) -> None:
        await self._driver.copy_records_to_table(
            USERS.name,
            records=[
                (
                    row.email,
                    row.password or unusable_hash,
                    row.name,
                    row.age,
                    row.balance_minor or 0,
                    now,
                    now,
                )
                for row in records
            ],
            columns=USER_COLUMNS,
        )
        if emails := [r.email for r in records if r.balance_minor]:
            await self.connection.execute(self.credits, {"emails": emails, "now": now})

    async def _through_staging(
        self, records: Sequence[ParsedRow], *, now: datetime, unusable_hash: str
    ) -> list[int]:
        if self._staging:
            await self.connection.execute(text(f"TRUNCATE {STAGING.name}"))
        else:
            await self.connection.execute(CreateTable(STAGING))
            self._staging = True
        await self._driver.copy_records_to_table(
            STAGING.name, records=records, columns=STAGING_COLUMNS
        )
        result = await self.connection.execute(
            self.move, {"now": now, "unusable_hash": unusable_hash}
        )
        return list(result.scalars())
