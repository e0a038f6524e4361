"""Is the money consistent? Read straight from the database after a fault: every payment has
both sides and its receipt job (nothing half-written), every balance is the sum of its ledger
rows, no money was made or lost, and no payment a client was told succeeded is missing."""

from __future__ import annotations

from collections.abc import Iterable

from tests.e2e.conftest import query_on

# Transfers that are not exactly one sent and one received row of one amount between two users.
HALF_WRITTEN_TRANSFERS = """
SELECT transfer_id FROM transactions WHERE transfer_id IS NOT NULL GROUP BY transfer_id
HAVING count(*) <> 2
    OR count(*) FILTER (WHERE kind = 'payment_sent') <> 1
    OR count(*) FILTER (WHERE kind = 'payment_received') <> 1
    OR min(amount_minor) <> max(amount_minor)
    OR count(DISTINCT user_id) <> 2
UNION ALL
SELECT id FROM transactions
WHERE kind IN ('payment_sent', 'payment_received') AND transfer_id IS NULL
"""

BALANCES_NOT_THEIR_LEDGER = """
SELECT u.id, u.balance_minor, ledger.total FROM users u JOIN LATERAL (
    SELECT coalesce(sum(CASE WHEN t.kind = 'payment_sent' THEN -t.amount_minor
                             ELSE t.amount_minor END), 0) AS total
    FROM transactions t WHERE t.user_id = u.id) ledger ON true
WHERE u.balance_minor <> ledger.total
"""

MONEY_IN_AND_HELD = """
SELECT (SELECT coalesce(sum(amount_minor), 0) FROM transactions
        WHERE kind IN ('top_up', 'import_credit')),
       (SELECT coalesce(sum(balance_minor), 0) FROM users)
"""

PAYMENTS_WITHOUT_RECEIPT = """
SELECT t.id FROM transactions t WHERE t.kind = 'payment_sent' AND NOT EXISTS (
    SELECT 1 FROM jobs j
    WHERE j.kind = 'notifications.payment_receipt' AND j.args ->> 'transaction_id' = t.id::text)
"""

PAYMENTS_SENT = "SELECT id::text FROM transactions WHERE kind = 'payment_sent'"


async def assert_money_consistent(database_url: str, acknowledged: Iterable[str]) -> int:
    """Fails with what is wrong; returns how many payments the ledger holds."""
    assert await query_on(database_url, HALF_WRITTEN_TRANSFERS) == []
    assert await query_on(database_url, BALANCES_NOT_THEIR_LEDGER) == []
    [(money_in, money_held)] = await query_on(database_url, MONEY_IN_AND_HELD)
    assert money_in == money_held
    assert await query_on(database_url, PAYMENTS_WITHOUT_RECEIPT) == []
    payments = {
        str(transaction_id) for (transaction_id,) in await query_on(database_url, PAYMENTS_SENT)
    }
    missing = set(acknowledged) - payments
    assert not missing, f"{len(missing)} payments answered 201 are not in the ledger"
    return len(payments)
