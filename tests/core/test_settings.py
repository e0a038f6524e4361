"""Settings: read from the environment into one typed object; production refuses unsafe values
at construction, before anything starts."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.core.settings import MIN_SECRET_KEY_BYTES, Environment, Settings

GOOD_SECRET = secrets.token_urlsafe(36)  # 48 bytes


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No stray variable from the shell or CI (ENVIRONMENT=production, DATABASE_URL=...) may
    decide these tests."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def build(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def production(**values: Any) -> Settings:
    defaults: dict[str, Any] = {
        "environment": "production",
        "secret_key": GOOD_SECRET,
        "argon2_time_cost": 2,
        "argon2_memory_kib": 19_456,
        "payment_gateway": "http",
        "payment_gateway_url": "https://gateway.invalid/v1",
    }
    return build(**{**defaults, **values})


def test_production_with_safe_values_is_accepted() -> None:
    settings = production()
    assert settings.environment is Environment.PRODUCTION
    assert settings.secret == GOOD_SECRET
    assert settings.effective_log_format == "json"
    # The secret is not printed with the settings.
    assert GOOD_SECRET not in repr(settings)
    assert GOOD_SECRET not in str(settings.model_dump())


def test_production_refuses_a_missing_secret_key() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY is required"):
        production(secret_key=None)
    with pytest.raises(ValidationError, match="SECRET_KEY is required"):
        production(secret_key="")


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("x" * (MIN_SECRET_KEY_BYTES - 1), id="31-bytes"),
        pytest.param("changeme", id="changeme"),
        pytest.param("CHANGEME", id="changeme-upper"),
        pytest.param("secret", id="secret"),
    ],
)
def test_production_refuses_a_weak_secret_key(secret: str) -> None:
    with pytest.raises(ValidationError, match=f"at least {MIN_SECRET_KEY_BYTES} bytes"):
        production(secret_key=secret)


def test_the_secret_key_floor_is_exactly_32_bytes() -> None:
    assert production(secret_key="k" * MIN_SECRET_KEY_BYTES).secret == "k" * 32


@pytest.mark.parametrize(
    ("time_cost", "memory_kib"),
    [(1, 65_536), (3, 19_455), (1, 1024)],
)
def test_production_refuses_argon2_parameters_under_the_floor(
    time_cost: int, memory_kib: int
) -> None:
    with pytest.raises(ValidationError, match="ARGON2"):
        production(argon2_time_cost=time_cost, argon2_memory_kib=memory_kib)


def test_production_refuses_the_sandbox_gateway() -> None:
    """Issue #15, item 13: `ENVIRONMENT=production` with the default `PAYMENT_GATEWAY=sandbox`
    started, and the sandbox approves every Luhn-valid card (0 of 1 refused before)."""
    with pytest.raises(ValidationError, match="PAYMENT_GATEWAY=sandbox"):
        production(payment_gateway="sandbox", payment_gateway_url=None)
    assert build(payment_gateway="sandbox").payment_gateway == "sandbox"  # fine elsewhere


def test_cheap_argon2_parameters_are_allowed_outside_production() -> None:
    settings = build(environment="test", argon2_time_cost=1, argon2_memory_kib=1024)
    assert (settings.argon2_time_cost, settings.argon2_memory_kib) == (1, 1024)


@pytest.mark.parametrize(
    "url", ["postgresql://u:p@db/app", "postgres://u:p@db/app"], ids=["postgresql", "postgres"]
)
def test_a_sync_postgres_url_is_refused_with_a_clear_message(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        build(environment="test", database_url=url)
    message = str(caught.value)
    assert "DATABASE_URL must name an async driver" in message
    assert "postgresql+asyncpg://" in message


def test_an_async_postgres_url_is_accepted() -> None:
    url = "postgresql+asyncpg://u:p@db:5432/app"
    settings = build(environment="test", database_url=url)
    assert settings.database_url == url
    assert not settings.is_sqlite


def test_cors_origins_are_split_on_commas() -> None:
    settings = build(
        environment="test",
        cors_origins=" https://a.example , https://b.example/,,http://localhost:3000 ",
    )
    assert settings.cors_origins == [
        "https://a.example",
        "https://b.example",
        "http://localhost:3000",
    ]
    assert build(environment="test", cors_origins="").cors_origins == []
    assert build(environment="test").cors_origins == []


def test_settings_are_read_from_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://app@db:5432/wallet")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/2")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example,https://b.example")
    monkeypatch.setenv("SIGNUP_ENABLED", "false")
    monkeypatch.setenv("MAX_JSON_BYTES", "4096")
    monkeypatch.setenv("ACCESS_TOKEN_TTL_SECONDS", "60")
    monkeypatch.setenv("SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")

    settings = Settings(_env_file=None)

    assert settings.environment is Environment.TEST
    assert settings.database_url == "postgresql+asyncpg://app@db:5432/wallet"
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.signup_enabled is False
    assert settings.max_json_bytes == 4096
    assert settings.access_token_ttl_seconds == 60
    assert settings.secret == GOOD_SECRET
    assert settings.log_level == "DEBUG"


def test_production_rules_apply_to_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "changeme")
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None)

    monkeypatch.setenv("SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db/wallet")
    with pytest.raises(ValidationError, match="async driver"):
        Settings(_env_file=None)


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in [
        ("PORT", "0"),
        ("CURRENCY", "usd"),
        ("MAX_JSON_BYTES", "10"),
        ("ENVIRONMENT", "staging"),
        ("LOG_FORMAT", "xml"),
    ]:
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            with pytest.raises(ValidationError):
                Settings(_env_file=None)


def test_a_dotenv_file_is_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "ENVIRONMENT=test\nMAX_UPLOAD_BYTES=12345\nCORS_ORIGINS=https://a.example\n"
    )
    settings = Settings(_env_file=env_file)
    assert settings.max_upload_bytes == 12345
    assert settings.cors_origins == ["https://a.example"]


def test_the_environment_wins_over_the_dotenv_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ENVIRONMENT=test\nMAX_UPLOAD_BYTES=12345\n")
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "999")
    assert Settings(_env_file=env_file).max_upload_bytes == 999


def test_settings_are_immutable() -> None:
    settings = build(environment="test")
    with pytest.raises(ValidationError):
        settings.max_json_bytes = 10**9  # type: ignore[misc]


def test_a_test_environment_gets_a_fresh_strong_secret(tmp_path: Path) -> None:
    first = build(environment="test", var_dir=tmp_path)
    second = build(environment="test", var_dir=tmp_path)
    assert len(first.secret.encode()) >= MIN_SECRET_KEY_BYTES
    assert first.secret != second.secret
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_development_generates_a_secret_once_and_keeps_it(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    first = build(environment="development", var_dir=var_dir)
    stored = var_dir / "secret_key"
    assert stored.read_text().strip() == first.secret
    assert len(first.secret.encode()) >= MIN_SECRET_KEY_BYTES
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    # A restart reads the same secret, so issued tokens stay valid.
    assert build(environment="development", var_dir=var_dir).secret == first.secret
