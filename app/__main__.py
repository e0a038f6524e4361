"""The command line: `python -m app serve | worker | expose | migrate | create-superuser`."""

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
        # uvicorn would trust X-Forwarded-For from 127.0.0.1 by default; the app applies
        # FORWARDED_ALLOW_IPS itself (app.main), default none.
        proxy_headers=False,
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


def worker(args: argparse.Namespace) -> None:
    import importlib

    import app.job_kinds  # noqa: F401  (registers every job kind)
    from app.core.jobs_runner import RunnerConfig, run_worker

    for module in args.imports:
        importlib.import_module(module)
    settings = get_settings()
    if not settings.redis_url:
        sys.exit("`worker` needs REDIS_URL; without it, jobs run inside the web process")
    grace = args.grace_seconds
    config = RunnerConfig(
        concurrency=args.concurrency,
        lease_seconds=args.lease_seconds,
        shutdown_grace_seconds=settings.graceful_shutdown_seconds if grace is None else grace,
        sweep_interval_seconds=args.sweep_seconds,
    )
    asyncio.run(run_worker(settings, config))


def expose(args: argparse.Namespace) -> None:
    from app.core.expose import ExposeError
    from app.tools.cli import expose_module_app

    settings = get_settings()
    try:
        served = expose_module_app(args.module, names=args.names, prefix=args.prefix)
    except (ExposeError, ImportError) as exc:
        sys.exit(f"expose: {exc}")
    for name, reason in served.skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    for name in served.exposed:
        print(f"POST /api/v1{served.prefix}/{name}", file=sys.stderr)
    if not args.no_migrate:
        migrate(args)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        served.app,  # an app object: one process (no --workers)
        host=args.host or settings.host,
        port=args.port or settings.port,
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        access_log=False,
        log_config=None,
        server_header=False,
        # uvicorn would trust X-Forwarded-For from 127.0.0.1 by default; the app applies
        # FORWARDED_ALLOW_IPS itself (app.main), default none.
        proxy_headers=False,
    )


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

    p = commands.add_parser("worker", help="run jobs from Redis (REDIS_URL) until SIGTERM/Ctrl-C")
    p.add_argument("--concurrency", type=int, default=8, help="jobs run at once (default 8)")
    p.add_argument(
        "--lease-seconds",
        type=float,
        default=30.0,
        help="a job whose worker is silent this long is run again elsewhere (default 30)",
    )
    p.add_argument(
        "--grace-seconds",
        type=float,
        help="at shutdown, how long running jobs may finish (default GRACEFUL_SHUTDOWN_SECONDS)",
    )
    p.add_argument("--sweep-seconds", type=float, default=5.0, help=argparse.SUPPRESS)
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="also import MODULE (job kinds defined outside app.job_kinds)",
    )
    p.set_defaults(func=worker)

    p = commands.add_parser(
        "expose", help="serve every public function of MODULE as POST /api/v1/tools/<module>/<fn>"
    )
    p.add_argument("module", help="an importable module, e.g. mypackage.utils")
    p.add_argument(
        "--name",
        dest="names",
        action="append",
        default=[],
        metavar="FUNCTION",
        help="expose only this function (repeatable); default: every public one",
    )
    p.add_argument("--prefix", help="the tools' path under /api/v1 (default /tools/<module>)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--no-migrate", action="store_true", help="skip `migrate` before serving")
    p.set_defaults(func=expose)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
