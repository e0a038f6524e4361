"""Every payment emails a receipt to both sides, after the payment committed; a payment that
is refused sends nothing; a mail server that fails never fails nor undoes the payment."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from app.jobs.models import Job
from app.notifications import service
from app.notifications.service import receipt_job_id
from app.wallet.models import Transaction
from tests.jobs.conftest import WaitFor
from tests.notifications.conftest import API, Person, SmtpServer, new_person

EMAIL = "notifications.email"
RECEIPT = "notifications.payment_receipt"


async def pay(client: AsyncClient, payer: Person, payee: Person, amount: str) -> Any:
    body = {"payee_id": payee.id, "amount": amount, "description": "Lunch"}
    return await client.post(f"{API}/payments", json=body, headers=payer.headers)


async def jobs_of(application: FastAPI, kind: str) -> list[Job]:
    async with application.state.db.sessionmaker() as session:
        rows = (await session.scalars(select(Job).where(Job.kind == kind))).all()
        await session.commit()
        return list(rows)


async def test_a_payment_mails_a_receipt_to_both_sides(
    client: AsyncClient, application: FastAPI, smtp_server: SmtpServer, wait_for: WaitFor
) -> None:
    payer = await new_person(client, name="Payer", balance="50.00")
    payee = await new_person(client, name="Payee")
    response = await pay(client, payer, payee, "12.50")
    assert response.status_code == 201, response.text
    sent_id = response.json()["id"]

    [receipt] = await jobs_of(application, RECEIPT)
    assert (await wait_for(receipt.id)).status == "succeeded"
    await smtp_server.wait_for(2)
    # The server has the mail before the job's row has its outcome: wait for the rows too.
    for email in await jobs_of(application, EMAIL):
        assert (await wait_for(email.id)).status == "succeeded"
    [to_payer] = smtp_server.to(payer.email)
    [to_payee] = smtp_server.to(payee.email)
    assert to_payer["Subject"] == "You paid 12.50 USD"
    assert to_payee["Subject"] == "You received 12.50 USD"
    assert f"to Payee <{payee.email}>" in to_payer.get_content()
    assert f"from Payer <{payer.email}>" in to_payee.get_content()
    assert f"Transaction: {sent_id}" in to_payer.get_content()
    assert "Balance after: 37.50 USD" in to_payer.get_content()
    assert "Balance after: 12.50 USD" in to_payee.get_content()
    assert "Description: Lunch" in to_payee.get_content()

    # Each receipt is a job of the user it mails: the payer never sees the payee's.
    payer_jobs = (await client.get(f"{API}/jobs", headers=payer.headers)).json()["items"]
    payee_jobs = (await client.get(f"{API}/jobs", headers=payee.headers)).json()["items"]
    assert sorted(job["kind"] for job in payer_jobs) == [EMAIL, RECEIPT]
    assert [job["kind"] for job in payee_jobs] == [EMAIL]
    assert payee_jobs[0]["result"]["to"] == payee.email


async def test_a_refused_payment_queues_no_receipt(
    client: AsyncClient, application: FastAPI, smtp_server: SmtpServer, wait_for: WaitFor
) -> None:
    payer = await new_person(client, name="Poor", balance="5.00")
    payee = await new_person(client, name="Payee")
    refused = await pay(client, payer, payee, "10.00")
    assert refused.status_code == 400
    assert refused.json()["code"] == "insufficient_funds"
    # The receipt was enqueued inside the transaction that rolled back: it went with it.
    # A payment that succeeds afterwards is the only one mailed.
    paid = await pay(client, payer, payee, "1.00")
    assert paid.status_code == 201, paid.text
    [receipt] = await jobs_of(application, RECEIPT)
    assert receipt.args == {"transaction_id": paid.json()["id"]}
    assert (await wait_for(receipt.id)).status == "succeeded"
    await smtp_server.wait_for(2)
    assert [m["Subject"] for m in smtp_server.to(payer.email)] == ["You paid 1.00 USD"]


async def test_a_mail_server_that_is_down_never_touches_the_payment(
    client: AsyncClient, application: FastAPI, smtp_server: SmtpServer, wait_for: WaitFor
) -> None:
    await smtp_server.stop()
    payer = await new_person(client, name="Payer", balance="20.00")
    payee = await new_person(client, name="Payee")
    response = await pay(client, payer, payee, "7.00")
    assert response.status_code == 201, response.text

    [receipt] = await jobs_of(application, RECEIPT)
    assert (await wait_for(receipt.id)).status == "succeeded"
    emails = await jobs_of(application, EMAIL)
    assert len(emails) == 2
    for email in emails:
        failing = await wait_for(email.id, until=lambda job: job.error is not None)
        assert failing.status in ("queued", "running")
    wallet = await client.get(f"{API}/wallet", headers=payer.headers)
    assert wallet.json()["balance"] == "13.00"
    listed = await client.get(f"{API}/transactions", headers=payee.headers)
    assert [tx["amount"] for tx in listed.json()["items"]] == ["7.00"]

    await smtp_server.start()
    for email in emails:
        done = await wait_for(email.id, seconds=30)
        assert done.status == "succeeded", done.error
        assert done.attempts >= 2
    assert len(smtp_server.received) == 2
    wallet = await client.get(f"{API}/wallet", headers=payer.headers)
    assert wallet.json()["balance"] == "13.00"


async def test_queueing_receipts_twice_queues_them_once(
    client: AsyncClient, application: FastAPI, smtp_server: SmtpServer, wait_for: WaitFor
) -> None:
    payer = await new_person(client, name="Payer", balance="5.00")
    payee = await new_person(client, name="Payee")
    response = await pay(client, payer, payee, "2.00")
    assert response.status_code == 201, response.text
    [receipt] = await jobs_of(application, RECEIPT)
    assert (await wait_for(receipt.id)).status == "succeeded"
    # The receipt job running again (its worker died after its commit) queues nothing new.
    async with application.state.db.sessionmaker() as session:
        again = await service.queue_payment_receipts(session, response.json()["id"], currency="USD")
    async with application.state.db.sessionmaker() as session:
        sides = (
            await session.scalars(select(Transaction.id).where(Transaction.amount_minor == 200))
        ).all()
        await session.commit()
    assert sorted(again) == sorted(receipt_job_id(side) for side in sides)
    emails = await jobs_of(application, EMAIL)
    assert sorted(email.id for email in emails) == sorted(again)
    for email in emails:
        assert (await wait_for(email.id)).status == "succeeded"
    assert len(smtp_server.received) == 2


async def test_a_receipt_for_a_transaction_that_does_not_exist_fails_for_good(
    enqueue_job: Any, wait_for: WaitFor
) -> None:
    job_id = await enqueue_job(RECEIPT, transaction_id=str(uuid.uuid4()))
    job = await wait_for(job_id)
    assert job.status == "failed"
    assert job.attempts == 1
    assert (job.error or "").startswith("transaction ")
