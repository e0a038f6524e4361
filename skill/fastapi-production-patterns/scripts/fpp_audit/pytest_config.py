"""The project's pytest-asyncio mode, read from the nearest pytest config (FPP402)."""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

_MODES: dict[Path, str | None] = {}


def pytest_asyncio_mode(start: Path) -> str | None:
    """`asyncio_mode` from the nearest pytest config (pytest.ini, pyproject.toml, tox.ini, "
    "setup.cfg)."""
    if start in _MODES:
        return _MODES[start]
    mode: str | None = None
    for folder in [start, *start.parents]:
        found = False
        for name, section in (
            ("pytest.ini", "pytest"),
            ("pyproject.toml", ""),
            ("tox.ini", "pytest"),
            ("setup.cfg", "tool:pytest"),
        ):
            file = folder / name
            if not file.is_file():
                continue
            try:
                if name == "pyproject.toml":
                    tool = tomllib.loads(file.read_text(encoding="utf-8")).get("tool", {})
                    options = tool.get("pytest", {})
                    options = options.get("ini_options", options)
                    if not options:
                        continue
                    mode = options.get("asyncio_mode")
                else:
                    parser = configparser.ConfigParser(interpolation=None)
                    parser.read(file, encoding="utf-8")
                    if not parser.has_section(section):
                        continue
                    mode = parser.get(section, "asyncio_mode", fallback=None)
            except (OSError, ValueError, configparser.Error):
                continue
            found = True
            break
        if found:
            break
    _MODES[start] = mode
    return mode
