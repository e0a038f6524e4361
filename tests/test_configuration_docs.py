"""Every setting is documented twice: a row of docs/configuration.md (name, default, meaning,
production advice) and a line of .env.example. Adding a field to Settings without both fails
here."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

import pytest
from pydantic_core import PydanticUndefined

from app.core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION = ROOT / "docs" / "configuration.md"
ENV_EXAMPLE = ROOT / ".env.example"


SETTINGS = sorted(name.upper() for name in Settings.model_fields)


def documented_rows() -> dict[str, list[str]]:
    """`NAME` -> the cells of its row in a `| variable | default | meaning | in production |`
    table."""
    rows: dict[str, list[str]] = {}
    for line in CONFIGURATION.read_text().splitlines():
        match = re.fullmatch(r"\| `([A-Z0-9_]+)` \|(.*)\|", line.strip())
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def example_names() -> set[str]:
    """Names set (or shown commented out) in .env.example: `NAME=...` or `# NAME=...`."""
    pattern = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)
    return set(pattern.findall(ENV_EXAMPLE.read_text()))


def expected_default(name: str) -> str | None:
    """The default as the docs write it, for plain values; None when it is computed."""
    field = Settings.model_fields[name.lower()]
    default = field.default
    if default is PydanticUndefined:
        return None
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, Enum):
        return f"`{default.value}`"
    if isinstance(default, Path):
        return f"`./{default}`"
    if isinstance(default, float) and default.is_integer():
        return f"`{int(default)}`"
    if isinstance(default, str | int | float):
        return f"`{default}`"
    return None


@pytest.mark.parametrize("name", SETTINGS)
def test_every_setting_has_a_complete_row(name: str) -> None:
    rows = documented_rows()
    assert name in rows, f"{name} is a setting without a row in docs/configuration.md"
    default, meaning, production = rows[name]
    assert all((default, meaning, production)), f"{name}: every column of its row is filled in"
    expected = expected_default(name)
    if expected is not None:
        assert default.startswith(expected), f"{name}: the default is {expected}, not {default}"


@pytest.mark.parametrize("name", SETTINGS)
def test_every_setting_is_in_the_env_example(name: str) -> None:
    assert name in example_names(), f"{name} is a setting missing from .env.example"


def test_nothing_documented_that_is_not_a_setting() -> None:
    """A typo in a name, or a setting removed from the code but not from the docs."""
    known = set(SETTINGS)
    assert set(documented_rows()) - known == set()
    assert example_names() - known == set()


def test_the_env_example_loads() -> None:
    """`cp .env.example .env` gives settings that validate (the lines are only defaults)."""
    settings = Settings(_env_file=ENV_EXAMPLE, environment="test")  # type: ignore[call-arg]
    assert settings.port == 8000
