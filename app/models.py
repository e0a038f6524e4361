"""Every table, imported in one place so Alembic (and the model/migration check) sees them all."""

from app.core.db import Base
from app.files.models import StoredFile
from app.jobs.models import Job
from app.users.models import RefreshToken, User
from app.wallet.models import IdempotencyRecord, Transaction

metadata = Base.metadata

__all__ = [
    "IdempotencyRecord",
    "Job",
    "RefreshToken",
    "StoredFile",
    "Transaction",
    "User",
    "metadata",
]
