"""POST /notifications: a superuser asks for an email; a job sends it through the configured
backend, outside the request, and a refused or failed send is retried."""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any

import anyio
import pytest
import structlog
from httpx import AsyncClient

from app.core import email as email_module
from app.core.email import ConsoleMailer, FileMailer, build_message, open_mailer
from app.core.settings import Settings
from tests.conftest import make_settings
from tests.jobs.conftest import WaitFor
from tests.notifications.conftest import API, SmtpServer, new_person

NOTIFICATIONS = f"{API}/notifications"


async def test_a_superuser_sends_an_email_through_smtp(
    client: AsyncClient,
    superuser_headers: dict[str, str],
    smtp_server: SmtpServer,
    wait_for: WaitFor,
) -> None:
    body = {"to": "Reader@Example.com", "subject": "Maintenance tonight", "body": "Back by 2.\n"}
    response = await client.post(NOTIFICATIONS, json=body, headers=superuser_headers)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["kind"] == "notifications.email"
    assert accepted["status"] in ("queued", "running", "succeeded")

    job = await wait_for(accepted["id"])
    assert job.status == "succeeded", job.error
    [received] = smtp_server.received
    assert received.mail_from == "wallet@example.com"
    assert received.rcpt_tos == ["Reader@example.com"]
    message = received.message
    assert message["Subject"] == "Maintenance tonight"
    assert message["From"] == "wallet@example.com"
    assert message["Message-ID"] == job.result["message_id"]
    assert message.get_content().splitlines() == ["Back by 2."]

    shown = await client.get(f"{API}/jobs/{accepted['id']}", headers=superuser_headers)
    assert shown.json()["status"] == "succeeded"


async def test_an_email_to_a_user_goes_to_their_address(
    client: AsyncClient,
    superuser_headers: dict[str, str],
    smtp_server: SmtpServer,
    wait_for: WaitFor,
) -> None:
    ada = await new_person(client, name="Ada")
    body = {"user_id": ada.id, "subject": "Hello Ada", "body": "Welcome."}
    response = await client.post(NOTIFICATIONS, json=body, headers=superuser_headers)
    assert response.status_code == 202, response.text
    assert (await wait_for(response.json()["id"])).status == "succeeded"
    [message] = smtp_server.to(ada.email)
    assert message["Subject"] == "Hello Ada"


async def test_a_refused_send_is_retried_until_it_is_delivered(
    client: AsyncClient,
    superuser_headers: dict[str, str],
    smtp_server: SmtpServer,
    wait_for: WaitFor,
) -> None:
    smtp_server.refuse_next = 1  # 451: try again later
    body = {"to": "patient@example.com", "subject": "Eventually", "body": "Here."}
    response = await client.post(NOTIFICATIONS, json=body, headers=superuser_headers)
    assert response.status_code == 202, response.text
    job = await wait_for(response.json()["id"], seconds=30)
    assert job.status == "succeeded", job.error
    assert job.attempts == 2
    assert smtp_server.refused == 1
    assert len(smtp_server.to("patient@example.com")) == 1


async def test_a_mail_server_that_is_down_is_retried_once_it_is_back(
    client: AsyncClient,
    superuser_headers: dict[str, str],
    smtp_server: SmtpServer,
    wait_for: WaitFor,
) -> None:
    await smtp_server.stop()
    body = {"to": "later@example.com", "subject": "When you are back", "body": "Hi."}
    response = await client.post(NOTIFICATIONS, json=body, headers=superuser_headers)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    failed_once = await wait_for(job_id, until=lambda job: job.error is not None)
    assert failed_once.status in ("queued", "running")
    assert failed_once.error is not None
    assert failed_once.error.startswith("attempt 1 of 8 failed: ")
    await smtp_server.start()
    job = await wait_for(job_id, seconds=30)
    assert job.status == "succeeded", job.error
    assert job.attempts >= 2
    assert len(smtp_server.to("later@example.com")) == 1


async def test_only_a_superuser_may_send(
    client: AsyncClient, user_headers: dict[str, str], smtp_server: SmtpServer
) -> None:
    body = {"to": "x@example.com", "subject": "Spam", "body": "Buy now."}
    anonymous = await client.post(NOTIFICATIONS, json=body)
    assert anonymous.status_code == 401
    response = await client.post(NOTIFICATIONS, json=body, headers=user_headers)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    listed = await client.get(f"{API}/jobs", headers=user_headers)
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"subject": "No recipient", "body": "x"},
        {"to": "a@example.com", "user_id": 1, "subject": "Both", "body": "x"},
        {"to": "not an address", "subject": "s", "body": "x"},
        {"to": "a@example.com", "subject": "Bcc: victim@example.com\r\nX", "body": "x"},
        {"to": "a@example.com", "subject": "", "body": "x"},
        {"to": "a@example.com", "subject": "s", "body": "x", "cc": "b@example.com"},
        {"to": "a@example.com", "subject": "s" * 201, "body": "x"},
        {"user_id": 0, "subject": "s", "body": "x"},
        {"user_id": "1; DROP TABLE users", "subject": "s", "body": "x"},
    ],
)
async def test_bad_requests_are_422_and_queue_nothing(
    client: AsyncClient, superuser_headers: dict[str, str], body: dict[str, Any]
) -> None:
    response = await client.post(NOTIFICATIONS, json=body, headers=superuser_headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    listed = await client.get(f"{API}/jobs", headers=superuser_headers)
    assert listed.json()["items"] == []


async def test_an_unknown_user_is_404_and_queues_nothing(
    client: AsyncClient, superuser_headers: dict[str, str]
) -> None:
    body = {"user_id": 2**40, "subject": "s", "body": "x"}
    response = await client.post(NOTIFICATIONS, json=body, headers=superuser_headers)
    assert response.status_code == 404
    assert response.json()["code"] == "user_not_found"
    listed = await client.get(f"{API}/jobs", headers=superuser_headers)
    assert listed.json()["items"] == []


async def test_the_file_backend_writes_one_eml_per_message(
    database_url: str, tmp_path: Any
) -> None:
    settings = make_settings(database_url, email_outbox_dir=tmp_path / "outbox")
    mailer = open_mailer(settings)
    assert isinstance(mailer, FileMailer)
    for n in range(2):
        await mailer.send(
            build_message(sender="a@example.com", to="b@example.com", subject=f"n{n}", body="ü\n")
        )
    files = sorted([path async for path in anyio.Path(tmp_path / "outbox").iterdir()])
    assert [path.suffix for path in files] == [".eml", ".eml"]  # no temporary file left
    parsed = [message_from_bytes(await path.read_bytes(), policy=policy.default) for path in files]
    assert sorted(str(message["Subject"]) for message in parsed) == ["n0", "n1"]
    assert parsed[0].get_content() == "ü\n"  # type: ignore[attr-defined]


@pytest.mark.parametrize("settings", [{"email_backend": "file"}], indirect=True)
async def test_the_file_backend_delivers_a_notification_to_the_outbox(
    client: AsyncClient,
    settings: Settings,
    superuser_headers: dict[str, str],
    smtp_server: SmtpServer,
    wait_for: WaitFor,
) -> None:
    body = {"to": "filed@example.com", "subject": "On disk", "body": "Kept."}
    response = await client.post(NOTIFICATIONS, json=body, headers=superuser_headers)
    assert response.status_code == 202, response.text
    job = await wait_for(response.json()["id"])
    assert job.status == "succeeded", job.error
    [eml] = [path async for path in anyio.Path(settings.email_outbox_dir).glob("*.eml")]
    message = message_from_bytes(await eml.read_bytes(), policy=policy.default)
    assert message["To"] == "filed@example.com"
    assert message["Subject"] == "On disk"
    assert smtp_server.received == []


def test_the_default_email_backend_is_the_file_outbox() -> None:
    assert Settings.model_fields["email_backend"].default == "file"


async def test_the_console_backend_logs_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    message = build_message(sender="a@example.com", to="c@example.com", subject="Hi", body="Yo")
    with structlog.testing.capture_logs() as logs:
        # The module's logger may already be cached (cache_logger_on_first_use) by an earlier
        # test in this worker; a fresh one binds to the capturing configuration.
        monkeypatch.setattr(email_module, "log", structlog.get_logger("app.email"))
        await ConsoleMailer().send(message)
    [entry] = [entry for entry in logs if entry["event"] == "email"]
    assert entry["to"] == "c@example.com"
    assert entry["subject"] == "Hi"
    assert "Yo" in entry["message"]


def test_a_header_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match=r"linefeed|carriage"):
        build_message(
            sender="a@example.com", to="b@example.com\nBcc: c@example.com", subject="s", body="x"
        )


def test_open_mailer_picks_the_smtp_backend(database_url: str) -> None:
    settings = make_settings(
        database_url,
        email_backend="smtp",
        smtp_host="mail.internal",
        smtp_port=2525,
        smtp_username="app",
        smtp_password="secret",
        smtp_tls=True,
    )
    mailer = open_mailer(settings)
    assert (mailer.host, mailer.port, mailer.username, mailer.password, mailer.start_tls) == (  # type: ignore[attr-defined]
        "mail.internal",
        2525,
        "app",
        "secret",
        True,
    )
