"""Start-up work of the users domain, run by the lifespan."""

from __future__ import annotations

import structlog
from fastapi import FastAPI

from app.core.db import Database
from app.core.security import PasswordHasher
from app.core.settings import Settings
from app.users import service

log = structlog.get_logger("app.users")


async def create_first_superuser(app: FastAPI) -> None:
    """FIRST_SUPERUSER_EMAIL/PASSWORD, when set and absent, become a superuser."""
    settings: Settings = app.state.settings
    if not (settings.first_superuser_email and settings.first_superuser_password):
        return
    db: Database = app.state.db
    hasher: PasswordHasher = app.state.password_hasher
    async with db.sessionmaker() as session:
        created = await service.ensure_superuser(
            session,
            settings.first_superuser_email,
            settings.first_superuser_password.get_secret_value(),
            hasher,
        )
    if created:
        log.info("first_superuser_created", email=settings.first_superuser_email.lower())
