"""Every table, imported in one place so Alembic (and the model/migration check) sees them all."""

from app.auth.models import RefreshToken
from app.core.db import Base
from app.users.models import User

metadata = Base.metadata

__all__ = ["RefreshToken", "User", "metadata"]
