from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class FileRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    filename: str = Field(examples=["report.pdf"])
    content_type: str = Field(examples=["application/pdf"])
    size: int = Field(description="bytes", examples=[482113])
    sha256: str = Field(description="hex digest of the content", examples=["9f86d0...0f00a08"])
    created_at: datetime
