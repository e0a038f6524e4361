"""PostgreSQL's way in for a batch of imported users: COPY, then one set-based INSERT.

The batch's valid rows go into a TEMPORARY staging table with asyncpg's binary COPY
(`copy_records_to_table`, on the driver connection under the import's SQLAlchemy connection,
so inside the import's transaction), then one statement moves them:

    WITH created AS (INSERT INTO users (...) SELECT ... FROM import_rows ORDER BY line
                     ON CONFLICT (email) DO NOTHING RETURNING id, email, balance_minor),
         credits AS (INSERT INTO transactions (...) SELECT ... FROM created
                     WHERE balance_minor > 0)
    SELECT line FROM import_rows WHERE NOT EXISTS (SELECT FROM created
                                                   WHERE created.email = import_rows.email)
    ORDER BY line

It answers with the lines of the rows it did not insert: duplicates, of a user who already
existed or of a row of an earlier batch (the reader refuses repeats inside a batch itself).
These are the verdicts of the row-by-row path's `INSERT ... ON CONFLICT DO NOTHING RETURNING`,
without sending a million parameter sets. The staging table is created in the import's
transaction (ON COMMIT DROP: a rollback removes it too) and emptied before each batch, which
is cheap: PostgreSQL truncates a table created in the same transaction in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Table,
    Text,
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


def _move_statement(credit_description: str) -> Any:
    users: Table = User.__table__  # type: ignore[assignment]
    transactions: Table = Transaction.__table__  # type: ignore[assignment]
    now = bindparam("now", type_=users.c.created_at.type)
    created = (
        postgresql.insert(users)
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
        .on_conflict_do_nothing(index_elements=[users.c.email])
        .returning(users.c.id, users.c.email, users.c.balance_minor)
        .cte("created")
    )
    # Users start at 0, so the credit's balance_after is its amount.
    credits = (
        insert(transactions)
        .from_select(
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
                created.c.id,
                literal(TransactionKind.IMPORT_CREDIT.value),
                created.c.balance_minor,
                created.c.balance_minor,
                literal(credit_description),
                now,
            ).where(created.c.balance_minor > 0),
        )
        .cte("credits")
    )
    # NOT EXISTS, not NOT IN: an anti-join, where NOT IN is a hashed subplan only while the
    # batch's emails fit in work_mem, and a scan of `created` per row beyond.
    return (
        select(STAGING.c.line)
        .where(~select(created.c.email).where(created.c.email == STAGING.c.email).exists())
        .order_by(STAGING.c.line)
        .add_cte(credits)
    )


class CopyWriter:
    """Writes batches of one import through the staging table, on the import's connection."""

    def __init__(self, connection: AsyncConnection, *, credit_description: str) -> None:
        self.connection = connection
        self.move = _move_statement(credit_description)
        self._driver: Any = None  # the asyncpg connection, once the staging table exists

    async def insert(
        self, records: Sequence[Sequence[Any]], *, now: datetime, unusable_hash: str
    ) -> list[int]:
        """Insert `records` (tuples in STAGING_COLUMNS order, emails distinct); returns the
        lines of those that were not inserted because their email is taken."""
        if self._driver is None:
            # Through SQLAlchemy first: this also begins the transaction the COPY must be in.
            await self.connection.execute(CreateTable(STAGING))
            raw = await self.connection.get_raw_connection()
            self._driver = raw.driver_connection
        else:
            await self.connection.execute(text(f"TRUNCATE {STAGING.name}"))
        await self._driver.copy_records_to_table(
            STAGING.name, records=records, columns=STAGING_COLUMNS
        )
        result = await self.connection.execute(
            self.move, {"now": now, "unusable_hash": unusable_hash}
        )
        return list(result.scalars())
