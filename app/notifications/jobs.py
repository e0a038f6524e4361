"""Notification job kinds: one email, and the receipts of a payment."""

from __future__ import annotations

from typing import Any

from app.core.email import build_message
from app.jobs.queue import JobContext, job_kind
from app.notifications import service


@job_kind("notifications.email", retryable=True, time_limit=60, max_attempts=8, retry_delay=2)
async def send_email(ctx: JobContext, *, to: str, subject: str, body: str) -> dict[str, Any]:
    message = build_message(sender=ctx.settings.email_from, to=to, subject=subject, body=body)
    await ctx.mailer.send(message)
    return {"to": to, "message_id": message["Message-ID"]}


@job_kind("notifications.payment_receipt", retryable=True, time_limit=60, max_attempts=6)
async def payment_receipt(ctx: JobContext, *, transaction_id: str) -> dict[str, Any]:
    """Queue one receipt email per side of the payment. Each is a job of its own, so a failure
    to reach one side is retried without mailing the other side twice; the payment itself is
    never touched."""
    async with ctx.session() as session:
        emails = await service.queue_payment_receipts(
            session, transaction_id, currency=ctx.settings.currency
        )
    return {"emails": [str(job_id) for job_id in emails]}
