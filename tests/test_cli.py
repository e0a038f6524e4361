"""`python -m app`: every command listed and every option explained; `create-superuser` never
takes a password on the command line; `import users` reports progress and the rejected rows."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer
from rich.console import Console

from app.__main__ import cli
from app.core.settings import Settings
from app.imports.cli import _ProgressReport
from tests.conftest import ROOT

GROUP: click.Group = typer.main.get_command(cli)  # type: ignore[assignment]
PASSWORD = "admin password 1"


def all_commands() -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in GROUP.commands.items():
        if isinstance(command, click.Group):
            found += [(f"{name} {sub}", c) for sub, c in command.commands.items()]
        else:
            found.append((name, command))
    return found


def run(
    *argv: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *argv],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """A migrated SQLite database of its own; nothing of the test run's settings leaks in."""
    settings = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        VAR_DIR=str(tmp_path / "var"),
        STORAGE_DIR=str(tmp_path / "files"),
        ENVIRONMENT="test",
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_KIB="64",
        COLUMNS="200",
        NO_COLOR="1",
    )
    assert run("migrate", env=env).returncode == 0
    return env


def test_help_lists_every_command() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "app", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    ).stdout
    for name in GROUP.commands:
        assert f" {name} " in shown, f"{name} missing from --help"


@pytest.mark.parametrize(("name", "command"), all_commands(), ids=lambda v: str(v))
def test_every_command_and_option_has_help(name: str, command: click.Command) -> None:
    assert command.help, f"`{name}` has no help text"
    for param in command.params:
        if getattr(param, "hidden", False) or param.name == "help":
            continue
        assert getattr(param, "help", None), f"`{name}`: {param.opts} has no help text"


def test_create_superuser_takes_no_password_on_the_command_line(cli_env: dict[str, str]) -> None:
    options = {opt for param in GROUP.commands["create-superuser"].params for opt in param.opts}
    assert not any("password" in option for option in options)
    refused = run("create-superuser", "a@example.com", "--password", PASSWORD, env=cli_env)
    assert refused.returncode == 2, refused.stdout + refused.stderr


def test_create_superuser_reads_the_environment_or_refuses_without_a_terminal(
    cli_env: dict[str, str],
) -> None:
    no_terminal = run("create-superuser", "a@example.com", env=cli_env, stdin="")
    assert no_terminal.returncode != 0
    assert "FIRST_SUPERUSER_PASSWORD" in no_terminal.stderr
    with_env = {**cli_env, "FIRST_SUPERUSER_PASSWORD": PASSWORD}
    created = run("create-superuser", "a@example.com", env=with_env)
    assert (created.returncode, created.stdout.strip()) == (0, "created"), created.stderr
    again = run("create-superuser", "a@example.com", env=with_env)
    assert again.stdout.strip() == "already exists"


def test_import_users_summarises_the_rejected_rows(cli_env: dict[str, str], tmp_path: Path) -> None:
    csv = tmp_path / "users.csv"
    csv.write_text(
        "email,name,age\nann@example.com,Ann,30\nnot-an-email,Bob,\ncy@example.com,Cy,\n"
    )
    no_owner = run("import", "users", str(csv), env=cli_env)
    assert no_owner.returncode == 2
    assert "create-superuser" in no_owner.stdout
    created = run(
        "create-superuser",
        "admin@example.com",
        env={**cli_env, "FIRST_SUPERUSER_PASSWORD": PASSWORD},
    )
    assert created.returncode == 0, created.stderr

    aborted = run("import", "users", str(csv), env=cli_env)
    assert aborted.returncode == 1, aborted.stdout + aborted.stderr
    assert "imported 0 user(s), rejected 1 row(s)" in aborted.stdout
    assert "│ 3 " in aborted.stdout  # the line number of the bad row (the header is line 1)
    assert "email" in aborted.stdout
    assert "--on-error skip" in aborted.stdout

    skipped = run("import", "users", str(csv), "--on-error", "skip", env=cli_env)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "imported 2 user(s), rejected 1 row(s)" in skipped.stdout


def test_progress_is_plain_lines_without_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with _ProgressReport(console, total_bytes=100, every_seconds=0) as report:
        report.read(b"email,name\n")
        report.read(b"a@example.com,A\nb@example.com,B\n")
    lines = out.getvalue().splitlines()
    assert lines, "no progress line"
    assert "2 rows read" in lines[-1]
    assert "rows/s" in lines[-1]
    assert "s left" in lines[-1]
    assert "\x1b" not in out.getvalue()  # no terminal control codes in a log


def test_progress_is_a_bar_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    with _ProgressReport(console, total_bytes=100) as report:
        report.read(b"email,name\na@example.com,A\n")
    shown = out.getvalue()
    assert "1 rows" in shown
    assert "rows/s" in shown
    assert "100%" in shown
