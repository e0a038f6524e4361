"""Audit cases of FPP3xx, Pydantic 2 and money: see __init__.py."""

FLAGGED: dict[str, list[str]] = {
    "FPP301": [
        """
import pydantic
from pydantic import BaseModel, root_validator, validator

class UserCreate(BaseModel):
    email: str

    @validator("email")  # <- FPP301
    def validate_email(cls, v):
        return v.lower()

    @root_validator  # <- FPP301
    def check(cls, values):
        return values

    @pydantic.validator("age", pre=True)  # <- FPP301
    def age(cls, v):
        return v
""",
    ],
    "FPP302": [
        """
from pydantic import BaseModel

class Base(BaseModel):
    class Config:  # <- FPP302
        extra = "forbid"

class UserOut(Base):
    id: int

    class Config:  # <- FPP302
        orm_mode = True

class FromElsewhere(ImportedBase):
    class Config:  # <- FPP302
        orm_mode = True
""",
    ],
    "FPP303": [
        """
from pydantic import BaseModel

class UserUpdate(BaseModel):
    name: str | None = None

def convert(payload: UserUpdate, row, data):
    user = UserUpdate.parse_obj(data)  # <- FPP303
    out = UserOut.from_orm(row)  # <- FPP303
    changes = payload.dict(exclude_unset=True)  # <- FPP303
    text = payload.json()  # <- FPP303
    return payload.copy(update=changes)  # <- FPP303

@app.post("/users")
async def create_user(user: UserIn):
    return user.dict()  # <- FPP303
""",
    ],
    "FPP304": [
        """
from pydantic import BaseModel, Optional  # <- FPP304
from pydantic import (
    BaseSettings,  # <- FPP304
)
""",
    ],
    "FPP305": [
        """
from fastapi import Query
from pydantic import BaseModel, Field

class UserCreate(BaseModel):
    email: str = Field(..., example="user@example.com")  # <- FPP305
    tags: list[str] = Field(min_items=1)  # <- FPP305

@app.get("/items")
async def items(q: str = Query(None, regex="^a")):  # <- FPP305
    return q
""",
    ],
    "FPP306": [
        """
from typing import Annotated, Optional
from pydantic import BaseModel, Field
from sqlalchemy.orm import Mapped

class PaymentRequest(BaseModel):
    amount: float = Field(..., gt=0)  # <- FPP306
    unit_price: float | None = None  # <- FPP306
    totalCost: Annotated[float, Field(ge=0)]  # <- FPP306

class Account(Base):
    balance: Mapped[Optional[float]]  # <- FPP306
    total: Mapped[float]  # <- FPP306

class Order(BaseModel):
    total: float  # <- FPP306

def process_payment(user_id: int, amount: float, card: dict) -> dict:  # <- FPP306
    return {}

@app.post("/payment")
def payment_endpoint(user_id: int, amount: float, card: dict):  # <- FPP306
    return process_payment(user_id, amount, card)
""",
    ],
    "FPP307": [
        """
from fastapi import APIRouter

router = APIRouter()

@router.patch("/users/{user_id}")
async def update_user(user_id: int, update: UserUpdate, db: AsyncSession = Depends(get_db)):
    data = update.model_dump()  # <- FPP307
    data = update.dict()  # <- FPP307
    data = update.model_dump(exclude_none=True)  # <- FPP307
    data = update.model_dump(exclude_unset=False)  # <- FPP307

@router.api_route("/items/{item_id}", methods=["PATCH"])
async def update_item(item_id: int, body: ItemUpdate):
    return body.model_dump(mode="json")  # <- FPP307
""",
    ],
    "FPP308": [
        """
from decimal import Decimal
from pydantic import BaseModel

class PaymentRequest(BaseModel):
    user_id: int  # <- FPP308
    amount: Decimal

class TransferCreate(BaseModel):
    from_user_id: int  # <- FPP308
    to_user_id: int
""",
    ],
}

QUIET: dict[str, list[str]] = {
    "FPP301": [
        """
from pydantic import BaseModel, field_validator, model_validator

def validator(name):
    return lambda f: f

class UserCreate(BaseModel):
    @field_validator("email")
    @classmethod
    def check(cls, v):
        return v

    @model_validator(mode="after")
    def both(self):
        return self

@validator("x")
def local_decorator_of_the_same_name():
    pass
""",
    ],
    "FPP302": [
        """
from pydantic import BaseModel, ConfigDict

class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

class Plugin:
    class Config:
        name = "plain class, not a model"
""",
    ],
    "FPP303": [
        """
import json
import httpx
from fastapi import Request
from httpx import Response
from pydantic import BaseModel

class UserUpdate(BaseModel):
    name: str | None = None

async def call(client: httpx.AsyncClient, payload: UserUpdate, mapping: dict):
    response = await client.get("/x")
    data = response.json()
    copy = mapping.copy()
    text = json.dumps(data)
    settings = Settings.model_validate(data)
    return payload.model_dump(exclude_unset=True), mapping.dict()

@app.post("/users")
async def create(user: UserIn, raw: dict, db: AsyncSession = Depends(get_db)):
    return user.model_dump(), raw.items(), db.dict()

@app.post("/webhook")
async def webhook(request: Request, upstream: Response):
    return await request.json(), upstream.json()
""",
    ],
    "FPP304": [
        """
from typing import Optional
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings
""",
    ],
    "FPP305": [
        """
from fastapi import Query
from pydantic import BaseModel, Field
from dataclasses import field

class UserCreate(BaseModel):
    email: str = Field(examples=["user@example.com"])
    tags: list[str] = Field(min_length=1)

@app.get("/items")
async def items(q: str = Query(None, pattern="^a")):
    return q

other = field(default=None, metadata={"example": 1})

def MyQuery(default=None, *, regex=None, example=None):
    return Query(default, regex=regex, example=example)
""",
    ],
    "FPP306": [
        """
from decimal import Decimal
from pydantic import BaseModel

class Payment(BaseModel):
    amount: Decimal
    amount_cents: int
    fee_rate: float
    total_seconds: float
    total_tokens: float
    price_ratio: float

def stats(latency: float, total_count: int) -> float:
    return latency

def incrbyfloat(name: str, amount: float = 1.0) -> float:
    return amount

class ClientTimeout:
    total: float | None = None
""",
    ],
    "FPP307": [
        """
from fastapi import APIRouter

router = APIRouter()

@router.patch("/users/{user_id}")
async def update_user(
    user_id: int, update: UserUpdate, current_user: CurrentUser = Depends(get_current_user)
):
    data = update.model_dump(exclude_unset=True)
    snapshot = current_user.model_dump()
    out = UserOut.model_validate(user)
    return out.model_dump()

@router.put("/users/{user_id}")
async def replace_user(user_id: int, update: UserReplace):
    return update.model_dump()

@mock.patch("app.x")
def test_patched(update):
    return update.model_dump()
""",
    ],
    "FPP308": [
        """
from pydantic import BaseModel

class PaymentResponse(BaseModel):
    user_id: int

class TransferCreate(BaseModel):
    to_user_id: int
    amount: Decimal

class UserCreate(BaseModel):
    user_id: int
""",
    ],
}
