"""Settings: every knob comes from the environment (or `.env`), read once into one typed object.

Nothing else in the code reads `os.environ`. Tests build their own `Settings(...)` and hand it to
`create_app`, so no cached global leaks from one test into the next.
"""

from __future__ import annotations

import ipaddress
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from limits import parse
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Secrets shorter than this are refused in production (RFC 7518 §3.2 asks 256 bits for HS256).
MIN_SECRET_KEY_BYTES = 32
# Values that look like somebody copied them from a tutorial.
KNOWN_UNSAFE_SECRETS = frozenset({"changeme", "secret", "change-me", "dev", "development"})


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite+aiosqlite:///./var/app.db"
    redis_url: str | None = None
    secret_key: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # Where the server processes of `serve --workers N` share their metrics (prometheus_client's
    # multiprocess mode). `serve --workers N` makes a temporary one when it is unset.
    prometheus_multiproc_dir: Path | None = None
    # Seconds uvicorn waits for in-flight requests after SIGTERM before cancelling them.
    graceful_shutdown_seconds: int = Field(default=10, ge=0, le=600)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_upload_bytes: int = Field(default=104_857_600, ge=1)
    # JSON and form bodies are small: anything larger is refused before it is parsed.
    max_json_bytes: int = Field(default=1_048_576, ge=1024)
    # Seconds a request body may send nothing before the request is answered 408.
    body_read_timeout: float = Field(default=15, gt=0)
    signup_enabled: bool = True
    first_superuser_email: str | None = None
    first_superuser_password: SecretStr | None = None
    access_token_ttl_seconds: int = Field(default=900, ge=1)
    refresh_token_ttl_seconds: int = Field(default=1_209_600, ge=1)
    # Login throttling (the `limits` library's notation, moving windows). Failures are counted
    # strictly per (email, client), loosely per email: one client can never reach the email's
    # allowance alone, so it cannot lock the owner out, while many clients guessing one
    # account are stopped. And per client, across emails.
    login_failures_per_email_and_client: str = "5/minute"
    login_failures_per_email: str = "20/minute"
    login_failures_per_client: str = "30/minute"
    # Sign-ups per client, and wrong `current_password` guesses per user.
    signup_rate_limit: str = "10/minute"
    password_checks_per_user: str = "5/minute"
    # Peers (IP addresses or networks) whose X-Forwarded-For names the client. Empty: the
    # peer address is the client, whatever the headers say.
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Password hashes waiting for a thread, per process, beyond which a request is answered
    # 503 with Retry-After at once instead of queueing behind a flood.
    password_hash_queue_limit: int = Field(default=32, ge=1)
    # `payee_not_found` answers per user: stops probing which emails have an account.
    payee_lookup_failures_per_user: str = "10/minute"
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    # Argon2id cost. The defaults are pwdlib's recommended profile; tests lower them to stay
    # fast, and production refuses anything under OWASP's floor (19 MiB, 2 passes).
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65_536, ge=8)

    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    db_pool_timeout: float = Field(default=30, gt=0)
    db_pool_recycle: int = Field(default=3600, ge=-1)
    # Off: a ping per checkout costs a round trip on every request. A dead connection is
    # caught on use instead (see app.users.service.load_user_snapshot and the 503 handler).
    db_pool_pre_ping: bool = False
    # Admission control in front of the database (app.core.admission): API requests in their
    # database part at once (unset: DB_POOL_SIZE, so request traffic never needs overflow
    # connections, which the stock pool closes on return and reopens: churn), how many more
    # may wait for a turn, first come first served, and for how long; beyond either bound an
    # immediate 503 database_busy with Retry-After.
    db_admission_limit: int | None = Field(default=None, ge=1)
    db_admission_queue: int = Field(default=1000, ge=0)
    db_admission_timeout: float = Field(default=5, gt=0)
    # SQLite waits this long for the write lock before giving up with "database is locked".
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)

    log_format: Literal["console", "json"] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Where a generated development secret is kept between runs.
    var_dir: Path = Path("./var")

    # Wallet: the payment gateway adapter.
    payment_gateway: Literal["sandbox", "http"] = "sandbox"
    payment_gateway_url: str | None = None

    # Email.
    email_backend: Literal["console", "file", "smtp"] = "file"
    email_outbox_dir: Path = Path("./var/outbox")
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: bool = False
    email_from: str = "no-reply@localhost"

    # Files: uploads and job results.
    storage_dir: Path = Path("./var/files")

    # Background jobs (app.jobs). With REDIS_URL they run in `python -m app worker` processes;
    # JOBS_IN_WEB_PROCESS makes the web process run them as well.
    jobs_in_web_process: bool = False
    job_concurrency: int = Field(default=8, ge=1)
    # A running job's heartbeat: a worker silent this long is presumed dead.
    job_lease_seconds: float = Field(default=30, gt=0)
    # How often recovery looks for jobs whose worker died and hand-offs that were lost.
    job_recovery_seconds: float = Field(default=5, gt=0)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _split_forwarded(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses_only(cls, values: list[str]) -> list[str]:
        # Addresses and networks only: "*" would let any client choose its own address.
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(
                    f"FORWARDED_ALLOW_IPS: {value!r} is not an IP address or network"
                ) from None
        return values

    @field_validator(
        "login_failures_per_email_and_client",
        "login_failures_per_email",
        "login_failures_per_client",
        "signup_rate_limit",
        "password_checks_per_user",
        "payee_lookup_failures_per_user",
    )
    @classmethod
    def _rate_limit_notation(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit such as '5/minute'") from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, origins: list[str]) -> list[str]:
        # Credentials are allowed for the listed origins; "*" with credentials would let every
        # site make authenticated calls (Starlette reflects the Origin), so it is refused.
        if "*" in origins:
            raise ValueError("CORS_ORIGINS may not contain '*': list the origins explicitly")
        return origins

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        if url.startswith(("postgres://", "postgresql://")):
            raise ValueError(
                "DATABASE_URL must name an async driver: postgresql+asyncpg://... "
                "(SQLAlchemy 2.1 maps postgresql:// to psycopg)"
            )
        return url

    @model_validator(mode="after")
    def _secret_and_production_rules(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            key = self.secret_key.get_secret_value() if self.secret_key else ""
            if not key:
                raise ValueError("SECRET_KEY is required when ENVIRONMENT=production")
            if len(key.encode()) < MIN_SECRET_KEY_BYTES or key.lower() in KNOWN_UNSAFE_SECRETS:
                raise ValueError(
                    f"SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes of randomness "
                    "when ENVIRONMENT=production"
                )
            if self.argon2_memory_kib < 19_456 or self.argon2_time_cost < 2:
                raise ValueError("ARGON2_* below OWASP's floor (19456 KiB, 2 passes) in production")
            # The sandbox approves every Luhn-valid card: real money would never be charged.
            if self.payment_gateway == "sandbox":
                raise ValueError(
                    "PAYMENT_GATEWAY=sandbox approves every card: production needs "
                    "PAYMENT_GATEWAY=http and PAYMENT_GATEWAY_URL"
                )
        if self.payment_gateway == "http" and not self.payment_gateway_url:
            raise ValueError("PAYMENT_GATEWAY=http needs PAYMENT_GATEWAY_URL")
        if self.environment is not Environment.PRODUCTION and self.secret_key is None:
            object.__setattr__(self, "secret_key", SecretStr(self._development_secret()))
        return self

    def _development_secret(self) -> str:
        if self.environment is Environment.TEST:
            return secrets.token_urlsafe(48)
        # Generated once and kept, so tokens survive a restart of `make run`.
        path = self.var_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value)
        path.chmod(0o600)
        return value

    @property
    def effective_db_admission_limit(self) -> int:
        return self.db_admission_limit or self.db_pool_size

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def effective_log_format(self) -> str:
        if self.log_format:
            return self.log_format
        return "console" if self.environment is Environment.DEVELOPMENT else "json"

    @property
    def secret(self) -> str:
        assert self.secret_key is not None  # set by the validator above
        return self.secret_key.get_secret_value()


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
