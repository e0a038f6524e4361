"""Email: one `Mailer` interface, three backends chosen by EMAIL_BACKEND.

- `file` (the default): each message is an `.eml` file under EMAIL_OUTBOX_DIR, written to a
  temporary name and renamed, so a reader never sees half a message.
- `console`: each message goes to the log.
- `smtp`: aiosmtplib to SMTP_HOST:SMTP_PORT, STARTTLS when SMTP_TLS, login when SMTP_USERNAME.

Sending happens in jobs (see app.notifications.jobs), never in a request: a slow or failing mail
server delays nobody and its failures are retried.
"""

from __future__ import annotations

import secrets
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

import aiosmtplib
import anyio
import structlog

from app.core.db import utcnow
from app.core.settings import Settings

log = structlog.get_logger("app.email")

SMTP_TIMEOUT_SECONDS = 10.0


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


def build_message(*, sender: str, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(utcnow().timestamp(), usegmt=True)
    # An explicit domain: make_msgid() would otherwise ask the resolver for this host's FQDN,
    # a blocking call.
    domain = sender.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(body)
    return message


class FileMailer:
    def __init__(self, outbox: Path) -> None:
        self.outbox = Path(outbox)

    async def send(self, message: EmailMessage) -> None:
        directory = anyio.Path(self.outbox)
        await directory.mkdir(parents=True, exist_ok=True)
        name = f"{utcnow():%Y%m%dT%H%M%S%f}-{secrets.token_hex(6)}"
        temporary = directory / f".{name}.part"
        await temporary.write_bytes(message.as_bytes())
        await temporary.rename(directory / f"{name}.eml")


class ConsoleMailer:
    async def send(self, message: EmailMessage) -> None:
        log.info(
            "email",
            to=message["To"],
            subject=message["Subject"],
            message=message.as_string(),
        )


class SmtpMailer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        start_tls: bool,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.start_tls = start_tls

    async def send(self, message: EmailMessage) -> None:
        # One connection per message: notifications are rare, and a pooled SMTP connection
        # would need keep-alive handling for little gain.
        await aiosmtplib.send(
            message,
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            # False, not None: None would upgrade opportunistically when the server offers it,
            # with certificate checks the operator did not ask for.
            start_tls=self.start_tls,
            timeout=SMTP_TIMEOUT_SECONDS,
            # Sent in EHLO; without it aiosmtplib asks the resolver for this host's FQDN.
            local_hostname="localhost",
        )


def open_mailer(settings: Settings) -> Mailer:
    if settings.email_backend == "smtp":
        return SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=settings.smtp_tls,
        )
    if settings.email_backend == "console":
        return ConsoleMailer()
    return FileMailer(settings.email_outbox_dir)
