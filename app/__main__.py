"""The operator's command line: `python -m app --help` lists every command.

typer (with rich) rather than argparse: typed options with help text, hidden prompts for
secrets, sub-commands (`import users`) and readable help come from the library; both already
ship with the FastAPI CLI this project depends on.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import signal
import sys
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import typer
import uvicorn

from app.core.settings import Settings, get_settings

cli = typer.Typer(
    name="python -m app",
    help="The wallet service: serve it, migrate it, run its job workers, administer it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings and help are plain text: paragraphs, no markup
)
imports = typer.Typer(
    help="Bulk imports from files, with progress.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
cli.add_typer(imports, name="import")

HostOption = Annotated[
    str | None, typer.Option(help="interface to listen on [default: HOST, 127.0.0.1]")
]
PortOption = Annotated[int | None, typer.Option(help="TCP port [default: PORT, 8000]")]
NoMigrateOption = Annotated[
    bool, typer.Option("--no-migrate", help="skip `migrate` before serving")
]


@cli.command()
def serve(
    host: HostOption = None,
    port: PortOption = None,
    workers: Annotated[
        int | None,
        typer.Option(help="server processes [default: WORKERS, 1]; metrics cover them all"),
    ] = None,
    no_migrate: NoMigrateOption = False,
) -> None:
    """Apply migrations, then serve HTTP until SIGTERM or Ctrl-C (graceful shutdown)."""
    settings = get_settings()
    if not no_migrate:
        migrate()
    processes = workers or settings.workers
    metrics_dir = _share_metrics(settings) if processes > 1 else None
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to its previous
    # handler; with the default one the process would die with status 143 after a clean stop.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.run(
            "app.main:app",
            host=host or settings.host,
            port=port or settings.port,
            workers=processes,
            # After SIGTERM, in-flight requests get this long before they are cancelled;
            # without it uvicorn waits forever for a slow client.
            timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
            access_log=False,  # our middleware logs each request once, with its request id
            log_config=None,  # the app's lifespan configures logging
            server_header=False,
            # uvicorn would trust X-Forwarded-For from 127.0.0.1 by default; the app applies
            # FORWARDED_ALLOW_IPS itself (app.main), default none.
            proxy_headers=False,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _share_metrics(settings: Settings) -> Path | None:
    """Prometheus multiprocess mode for `--workers N`: the worker processes (started after
    this) inherit PROMETHEUS_MULTIPROC_DIR and write their metrics there, so any of them can
    answer a scrape for all. Files of an earlier run are removed, as prometheus_client asks.
    Returns the directory to delete at exit when it was made here."""
    configured = settings.prometheus_multiproc_dir
    directory = configured or Path(tempfile.mkdtemp(prefix="app-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return None if configured else directory


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


@cli.command()
def migrate() -> None:
    """Upgrade the database (DATABASE_URL) to the latest migration."""
    from app.migrate import upgrade

    upgrade(get_settings().database_url)


@cli.command("create-superuser")
def create_superuser(
    email: Annotated[str, typer.Argument(help="the superuser's email (also the login)")],
) -> None:
    """Create a superuser unless the email exists. The password is read from
    FIRST_SUPERUSER_PASSWORD when set, else from a hidden prompt; never from the command line."""
    from app.core.db import open_database
    from app.core.security import PasswordHasher
    from app.users.service import ensure_superuser

    settings = get_settings()
    if settings.first_superuser_password is not None:
        password = settings.first_superuser_password.get_secret_value()
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        raise typer.BadParameter(
            "no terminal to prompt on: set FIRST_SUPERUSER_PASSWORD", param_hint="password"
        )

    async def run() -> bool:
        db = await open_database(settings)
        try:
            async with db.sessionmaker() as session:
                hasher = PasswordHasher(
                    time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
                )
                return await ensure_superuser(session, email, password, hasher)
        finally:
            await db.dispose()

    created = asyncio.run(run())
    typer.echo("created" if created else "already exists")


@cli.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="jobs run at once [default: JOB_CONCURRENCY]")
    ] = None,
    lease_seconds: Annotated[
        float | None,
        typer.Option(
            help="a job whose worker is silent this long is run again elsewhere "
            "[default: JOB_LEASE_SECONDS]"
        ),
    ] = None,
    grace_seconds: Annotated[
        int | None,
        typer.Option(
            help="at shutdown, how long running jobs may finish "
            "[default: GRACEFUL_SHUTDOWN_SECONDS]"
        ),
    ] = None,
    sweep_seconds: Annotated[
        float | None,
        typer.Option(
            help="how often stale jobs are looked for [default: JOB_RECOVERY_SECONDS]",
            hidden=True,
        ),
    ] = None,
    imports_: Annotated[
        list[str] | None,
        typer.Option(
            "--import",
            metavar="MODULE",
            help="also import MODULE (job kinds defined outside app.job_kinds); repeatable",
        ),
    ] = None,
) -> None:
    """Run jobs from Redis (REDIS_URL) until SIGTERM or Ctrl-C. Start as many as you like,
    on any host that reaches the database, Redis and the file storage."""
    import app.job_kinds  # noqa: F401  (registers every job kind)
    from app.jobs.worker import run_worker

    for module in imports_ or []:
        importlib.import_module(module)
    settings = get_settings()
    if not settings.redis_url:
        sys.exit("`worker` needs REDIS_URL; without it, jobs run inside the web process")
    options = {
        "job_concurrency": concurrency,
        "job_lease_seconds": lease_seconds,
        "job_recovery_seconds": sweep_seconds,
        "graceful_shutdown_seconds": grace_seconds,
    }
    overrides = {name: value for name, value in options.items() if value is not None}
    asyncio.run(run_worker(settings.model_copy(update=overrides)))


@cli.command()
def expose(
    module: Annotated[str, typer.Argument(help="an importable module, e.g. mypackage.utils")],
    names: Annotated[
        list[str] | None,
        typer.Option(
            "--name",
            metavar="FUNCTION",
            help="expose only this function (repeatable); default: every public one",
        ),
    ] = None,
    prefix: Annotated[
        str | None, typer.Option(help="the tools' path under /api/v1 [default: /tools/<module>]")
    ] = None,
    host: HostOption = None,
    port: PortOption = None,
    no_migrate: NoMigrateOption = False,
) -> None:
    """Serve every public function of MODULE as `POST /api/v1/tools/<module>/<function>`."""
    from app.expose import ExposeError
    from app.main import API_PREFIX, create_app
    from app.tools.cli import expose_module

    settings = get_settings()
    try:
        served = expose_module(module, names=names or [], prefix=prefix)
    except (ExposeError, ImportError) as exc:
        sys.exit(f"expose: {exc}")
    app = create_app()
    app.include_router(served.exposer.router, prefix=API_PREFIX)
    for name, reason in served.skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    for name in served.exposed:
        print(f"POST /api/v1{served.prefix}/{name}", file=sys.stderr)
    if not no_migrate:
        migrate()
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        app,  # an app object: one process (no --workers)
        host=host or settings.host,
        port=port or settings.port,
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        access_log=False,
        log_config=None,
        server_header=False,
        # uvicorn would trust X-Forwarded-For from 127.0.0.1 by default; the app applies
        # FORWARDED_ALLOW_IPS itself (app.main), default none.
        proxy_headers=False,
    )


class OnErrorChoice(StrEnum):
    ABORT = "abort"
    SKIP = "skip"


@imports.command("users")
def import_users(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV with the header email,name[,age][,password][,balance]",
        ),
    ],
    on_error: Annotated[
        OnErrorChoice,
        typer.Option(help="abort: one bad row imports nothing; skip: import the good rows"),
    ] = OnErrorChoice.ABORT,
    owner: Annotated[
        str | None,
        typer.Option(
            "--as",
            metavar="EMAIL",
            help="the superuser recorded as the file's owner [default: the oldest superuser]",
        ),
    ] = None,
) -> None:
    """Import users from a CSV file, with a progress bar and a summary of rejected rows."""
    from app.imports.cli import run_import

    mode: Literal["abort", "skip"] = "skip" if on_error is OnErrorChoice.SKIP else "abort"
    code = asyncio.run(run_import(get_settings(), file, on_error=mode, owner_email=owner))
    raise typer.Exit(code)


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
