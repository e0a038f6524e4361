"""The command line: `python -m app serve | migrate | create-superuser`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import signal
import sys

import uvicorn

from app.core.settings import get_settings


def serve(args: argparse.Namespace) -> None:
    settings = get_settings()
    if not args.no_migrate:
        migrate(args)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to its previous
    # handler; with the default one the process would die with status 143 after a clean stop.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "app.main:app",
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers or settings.workers,
        # After SIGTERM, in-flight requests get this long before they are cancelled; without
        # it uvicorn waits forever for a slow client.
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        access_log=False,  # our middleware logs each request once, with its request id
        log_config=None,  # the app's lifespan configures logging
        server_header=False,
    )


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def migrate(_: argparse.Namespace) -> None:
    from app.migrate import upgrade

    upgrade(get_settings().database_url)


def create_superuser(args: argparse.Namespace) -> None:
    from app.core.db import open_database
    from app.core.security import PasswordHasher
    from app.users.service import ensure_superuser

    settings = get_settings()
    password = args.password or getpass.getpass("Password: ")

    async def run() -> bool:
        db = await open_database(settings)
        try:
            async with db.sessionmaker() as session:
                hasher = PasswordHasher(
                    time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
                )
                return await ensure_superuser(session, args.email, password, hasher)
        finally:
            await db.dispose()

    created = asyncio.run(run())
    print("created" if created else "already exists")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="apply migrations, then serve HTTP until SIGTERM/Ctrl-C")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int)
    p.add_argument("--no-migrate", action="store_true", help="skip `migrate` before serving")
    p.set_defaults(func=serve)

    p = commands.add_parser("migrate", help="upgrade the database to the latest migration")
    p.set_defaults(func=migrate)

    p = commands.add_parser("create-superuser", help="create a superuser unless the email exists")
    p.add_argument("email")
    p.add_argument("--password", help="read from a prompt when omitted")
    p.set_defaults(func=create_superuser)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
