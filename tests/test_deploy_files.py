"""The container files, checked without a Docker engine: every environment variable they set is a
real setting, every command they run is a command of `python -m app` (with options it has), and
the ports and health-check paths are the app's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml

from app.__main__ import cli
from app.core.settings import Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
APP_SERVICES = ("migrate", "api", "worker")
# Variables of the image that are not settings: Python's, pip's and uv's own.
NOT_SETTINGS = re.compile(r"^(PATH|PYTHON[A-Z_]*|PIP_[A-Z_]+|UV_[A-Z_]+)$")

SETTING_NAMES = {name.upper() for name in Settings.model_fields}
COMMANDS: click.Group = typer.main.get_command(cli)  # type: ignore[assignment]


def dockerfile_instructions(stage: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped; only the
    named stage's when `stage` is given."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    instructions: list[tuple[str, str]] = []
    current: str | None = None
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            current = rest.split(" AS ")[-1].strip() if " AS " in rest else None
        if stage is None or current == stage:
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_env(stage: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in dockerfile_instructions(stage):
        if keyword == "ENV":
            env.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", rest))
    return env


def exec_form(arguments: str) -> list[str]:
    parsed = yaml.safe_load(arguments)  # a JSON array is YAML
    assert isinstance(parsed, list), f"not the exec form: {arguments}"
    return [str(part) for part in parsed]


def one(keyword: str, stage: str = "runtime") -> str:
    found = [rest for kw, rest in dockerfile_instructions(stage) if kw == keyword]
    assert len(found) == 1, f"{keyword} in stage {stage}: {found}"
    return found[0]


def app_routes() -> set[str]:
    """The app's paths, from its OpenAPI document (routers stay nested in app.routes)."""
    return set(create_app(Settings(environment="test")).openapi()["paths"])


def assert_cli_invocation(argv: list[str]) -> None:
    """`argv` (after `python -m app`) names a command and only options it has."""
    name, *args = argv
    assert name in COMMANDS.commands, f"`{name}` is not a command of python -m app"
    command = COMMANDS.commands[name]
    known = {opt for param in command.params for opt in param.opts}
    for arg in args:
        if arg.startswith("--"):
            assert arg.split("=")[0] in known, f"`{name}` has no option {arg}"


# --- the Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_and_installs_the_hashed_lock_with_uv() -> None:
    stages = [rest for kw, rest in dockerfile_instructions() if kw == "FROM"]
    assert len(stages) >= 2, stages
    build = " ".join(rest for kw, rest in dockerfile_instructions("build") if kw == "RUN")
    assert "uv pip sync" in build
    assert "--require-hashes" in build
    assert "requirements.lock" in build
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert makefile_uv is not None
    assert f"ARG UV_VERSION={makefile_uv.group(1)}" in DOCKERFILE, "the Makefile's uv version"
    assert "pip install" in build, "uv comes from PyPI, installed with pip"


def test_dockerfile_runs_as_an_unprivileged_user() -> None:
    user = one("USER")
    assert user.split(":")[0] not in {"root", "0"}


def test_dockerfile_entry_point_is_the_cli_in_exec_form() -> None:
    assert exec_form(one("ENTRYPOINT")) == ["python", "-m", "app"]
    assert_cli_invocation(exec_form(one("CMD")))
    assert one("STOPSIGNAL") == "SIGTERM"


def test_dockerfile_environment_names_are_settings() -> None:
    for stage in ("build", "runtime"):
        for name in dockerfile_env(stage):
            assert NOT_SETTINGS.match(name) or name in SETTING_NAMES, f"{name} is no setting"


def test_dockerfile_healthcheck_asks_the_readiness_route_with_python() -> None:
    healthcheck = one("HEALTHCHECK")
    command = exec_form(healthcheck[healthcheck.index("CMD") + len("CMD") :].strip())
    assert command[0] == "python", "python, not curl: the slim image has no curl"
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/]+)", " ".join(command))
    assert url is not None, command
    port, path = url.groups()
    assert path == "/health/ready"
    assert path in app_routes()
    env = dockerfile_env("runtime")
    assert port == env["PORT"] == one("EXPOSE")
    assert env["HOST"] == "0.0.0.0"  # noqa: S104  (reachable from outside the container)


def test_the_healthcheck_command_is_valid_python() -> None:
    healthcheck = one("HEALTHCHECK")
    command = exec_form(healthcheck[healthcheck.index("CMD") + len("CMD") :].strip())
    code = command[command.index("-c") + 1]
    compile(code, "<healthcheck>", "exec")


# --- compose.yaml -------------------------------------------------------------------------------


def services() -> dict[str, dict[str, Any]]:
    return COMPOSE["services"]  # type: ignore[no-any-return]


def test_compose_has_every_part() -> None:
    assert {"db", "redis", "migrate", "api", "worker"} <= set(services())


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_environment_names_are_settings(name: str) -> None:
    environment = services()[name].get("environment", {})
    assert environment, f"{name} has no environment"
    for variable in environment:
        assert variable in SETTING_NAMES, f"{name}: {variable} is not a setting"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_commands_exist_in_the_cli(name: str) -> None:
    assert_cli_invocation(services()[name]["command"])


def test_compose_migrates_once_before_api_and_workers() -> None:
    assert services()["migrate"]["command"] == ["migrate"]
    assert services()["migrate"]["restart"] == "no"
    for name in ("api", "worker"):
        depends = services()[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert "--no-migrate" in services()["api"]["command"], "replicas must not race to migrate"


def test_compose_api_scales_without_host_port_conflicts() -> None:
    api = services()["api"]
    for port in api.get("ports", []):
        published = str(port).rsplit(":", 1)
        assert len(published) == 1 or not published[0].split(":")[-1], f"fixed host port {port}"
    exposed = [str(port) for port in api.get("expose", [])]
    assert exposed == [dockerfile_env("runtime")["PORT"]]
    proxy = services().get("proxy")
    if proxy is not None:
        caddyfile = COMPOSE["configs"]["caddyfile"]["content"]
        assert f"api {exposed[0]}" in caddyfile


def test_compose_shares_one_storage_volume_between_api_and_workers() -> None:
    mounts = {}
    for name in ("api", "worker"):
        storage_dir = services()[name]["environment"]["STORAGE_DIR"]
        [volume] = [v for v in services()[name]["volumes"] if v.endswith(":" + storage_dir)]
        mounts[name] = volume.split(":")[0]
    assert mounts["api"] == mounts["worker"]
    assert mounts["api"] in COMPOSE["volumes"], "a named volume, not a per-host directory"


def test_compose_gives_the_graceful_stop_its_time() -> None:
    for name in ("api", "worker"):
        service = services()[name]
        grace = int(service["environment"]["GRACEFUL_SHUTDOWN_SECONDS"])
        assert int(service["stop_grace_period"].removesuffix("s")) > grace


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".env", "var/"):
        assert entry in ignored


# --- the CLI they call ----------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "app", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
    ).stdout
    for command in ("serve", "migrate", "create-superuser", "worker", "expose", "import"):
        assert re.search(rf"\b{re.escape(command)}\b", shown), f"{command} not in --help"
