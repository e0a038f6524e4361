"""The expose tests' settings: a storage folder of each test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, storage_dir=tmp_path / "files")
