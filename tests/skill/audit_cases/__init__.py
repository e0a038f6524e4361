"""Code the audit must flag, and close look-alikes it must leave alone, one group per rule.

A flagged case marks every line that must carry a finding of its rule with `# <- CODE`; the test
checks the lines found are exactly those. A quiet case must produce no finding of its rule.
The snippets are strings, so this repository's own audit and linters never read them as code.
"""

FLAGGED: dict[str, list[str]] = {
    "FPP101": [
        """
from sqlalchemy.ext.asyncio import create_async_engine as make
import sqlalchemy

engine = make("postgresql+asyncpg://db/app", pool_pre_ping=True)  # <- FPP101

class Holder:
    engine = sqlalchemy.create_engine("postgresql://db/app", pool_pre_ping=True)  # <- FPP101

def make_engine(url):
    return make(url, pool_pre_ping=True)

default_engine = make_engine(URL)  # <- FPP101
""",
    ],
    "FPP107": [
        """
import httpx
import redis.asyncio as aioredis
from redis.asyncio import ConnectionPool

http = httpx.AsyncClient(timeout=10)  # <- FPP107
pool = ConnectionPool.from_url("redis://localhost")  # <- FPP107

def get_redis():
    return aioredis.Redis(connection_pool=pool)

redis = get_redis()  # <- FPP107

class DiscordClient:
    def __init__(self, token):
        self.client = httpx.AsyncClient(headers={"Authorization": token})

bot_client = DiscordClient(TOKEN)  # <- FPP107
""",
    ],
    "FPP102": [
        """
from contextlib import asynccontextmanager
from sqlalchemy.ext.asyncio import create_async_engine

@asynccontextmanager
async def lifespan(app):
    app.state.engine = create_async_engine(URL, pool_pre_ping=True)  # <- FPP102
    yield
""",
        """
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

@pytest.fixture
async def db_session():
    engine = create_async_engine(TEST_DATABASE_URL)  # <- FPP102
    async with AsyncSession(engine) as session:
        yield session
        await session.rollback()
""",
    ],
    "FPP103": [
        """
from fastapi import FastAPI
app = FastAPI(on_startup=[connect])  # <- FPP103

@app.on_event("startup")  # <- FPP103
async def startup():
    await database.connect()

app.add_event_handler("shutdown", disconnect)  # <- FPP103
""",
    ],
    "FPP104": [
        """
from sqlalchemy.ext.asyncio import create_async_engine

def make_engine(settings):
    return create_async_engine(settings.url, pool_size=10, max_overflow=20)  # <- FPP104
""",
    ],
    "FPP105": [
        """
from functools import lru_cache
import functools
import redis
from sqlalchemy.ext.asyncio import AsyncEngine

@lru_cache()  # <- FPP105
def get_redis_client():
    return redis.Redis(host=settings.REDIS_HOST)

@functools.cache  # <- FPP105
def make() -> AsyncEngine:
    return build()
""",
    ],
    "FPP106": [
        """
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

app = FastAPI(lifespan=lifespan)

async def get_db() -> AsyncSession:
    async with AsyncSession(app.state.db_engine) as session:  # <- FPP106
        yield session
""",
    ],
    "FPP201": [
        """
import requests as rq
import httpx

async def get_user_endpoint(user_id: int):
    response = rq.get(f"https://api.example.com/user/{user_id}")  # <- FPP201
    with httpx.Client() as client:  # <- FPP201
        return client.get("/x")
""",
    ],
    "FPP202": [
        """
from time import sleep as pause
import time

async def handler():
    time.sleep(1)  # <- FPP202
    pause(0.5)  # <- FPP202
""",
    ],
    "FPP203": [
        """
from pathlib import Path

async def read_config():
    with open("config.json") as f:  # <- FPP203
        data = f.read()
    return data + Path("extra.txt").read_text()  # <- FPP203
""",
    ],
    "FPP204": [
        """
import redis

cache = redis.Redis.from_url("redis://localhost")

async def get_item(key: str):
    client = redis.Redis(host="localhost")  # <- FPP204
    return cache.get(key) or client.get(key)  # <- FPP204
""",
    ],
    "FPP205": [
        """
from typing import Annotated
from fastapi import Depends
from sqlalchemy.orm import Session, sessionmaker

SessionLocal = sessionmaker(bind=engine)
SessionDep = Annotated[Session, Depends(get_db)]

@router.get("/items")
async def list_items(db: Session = Depends(get_db)):  # <- FPP205
    return db.query(Item).all()

@router.get("/users")
async def list_users(session: SessionDep):  # <- FPP205
    with SessionLocal() as other:  # <- FPP205
        return other.query(User).all()
""",
    ],
    "FPP206": [
        """
import pandas as pd
from fastapi import UploadFile

@app.post("/upload-csv")
async def upload_csv(file: UploadFile):
    df = pd.read_csv(file.file)  # <- FPP206
    head = file.file.read(10)  # <- FPP206
    for line in file.file:  # <- FPP206
        pass
    return {"rows": len(df)}
""",
    ],
    "FPP207": [
        """
from typing import Annotated
from fastapi import File, UploadFile

@app.post("/upload/")
async def upload_file(file: UploadFile = File(...)):
    contents = await file.read()  # <- FPP207
    return {"filename": file.filename, "size": len(contents)}

@app.post("/avatar")
async def avatar(image: Annotated[UploadFile, File()]):
    return len(await image.read())  # <- FPP207
""",
    ],
    "FPP208": [
        """
import asyncio

async def run():
    proc = await asyncio.create_subprocess("ls", "-l")  # <- FPP208
""",
    ],
    "FPP209": [
        """
import asyncio

async def get_user_endpoint(user_id: int):
    loop = asyncio.get_event_loop()
    await loop.run_in_executor(None, get_user_data, user_id)  # <- FPP209
    return await run_in_executor(None, get_user_data, user_id)  # <- FPP209
""",
    ],
    "FPP210": [
        """
import smtplib
from fastapi import BackgroundTasks

def send_email(email: str, message: str):
    with smtplib.SMTP("localhost") as smtp:
        smtp.sendmail("app@example.com", [email], message)

@app.post("/send-notification/")
async def send_notification(email: str, background_tasks: BackgroundTasks):
    background_tasks.add_task(send_email, email, "notification")  # <- FPP210
""",
    ],
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
    "FPP401": [
        """
import httpx
from httpx import AsyncClient

async def test_it():
    async with AsyncClient(app=app, base_url="http://test") as ac:  # <- FPP401
        pass
    client = httpx.Client(app=app)  # <- FPP401
""",
    ],
    "FPP402": [
        """
import pytest

@pytest.fixture  # <- FPP402
async def async_client():
    yield Client()

@pytest.fixture(scope="session")  # <- FPP402
async def engine():
    return make()
""",
    ],
    "FPP403": [
        """
async def get_db():
    async with SessionLocal() as session:
        yield session

async def override_get_db():
    return test_session

def test_update_user():
    app.dependency_overrides[get_db] = override_get_db  # <- FPP403
    app.dependency_overrides[deps.get_session] = lambda: test_session  # <- FPP403
""",
    ],
    "FPP501": [
        """
import httpx

@app.get("/users/{user_id}")
async def get_user_endpoint(user_id: int):
    async with httpx.AsyncClient() as client:  # <- FPP501
        response = await client.get(f"https://api.example.com/user/{user_id}")
    return response.json()
""",
    ],
    "FPP502": [
        """
async def get_session():
    async with SessionLocal() as session:
        yield session
        await session.commit()  # <- FPP502

async def get_tx():
    async with maker.begin() as session:  # <- FPP502
        yield session

def get_db():
    db = SessionLocal()
    try:
        yield db
        db.commit()  # <- FPP502
    finally:
        db.close()
""",
    ],
    "FPP503": [
        """
from fastapi.middleware.cors import CORSMiddleware

app.add_middleware(
    CORSMiddleware,
    allow_origins=["*"],  # <- FPP503
    allow_credentials=True,
)
app.add_middleware(CORSMiddleware, allow_origin_regex=".*", allow_credentials=True)  # <- FPP503
""",
    ],
    "FPP504": [
        """
from fastapi.middleware.cors import CORSMiddleware

app.add_middleware(
    CORSMiddleware,
    allow_origins=["https://yourdomain.com"],
    allow_methods=["GET", "POST", "PUT", "DELETE"],  # <- FPP504
)

@app.patch("/users/{user_id}")
async def update_user(user_id: int, update: UserUpdate):
    return update.model_dump(exclude_unset=True)
""",
    ],
    "FPP505": [
        """
from fastapi import HTTPException, status
from fastapi.responses import JSONResponse

@app.post("/payment")
async def pay(request: PaymentRequest):
    try:
        return await process(request)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc))  # <- FPP505
    except Exception as err:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(err)) from err  # <- FPP505

@app.exception_handler(ValueError)
async def value_error_handler(request, exc: ValueError):
    return JSONResponse(status_code=400, content={"detail": str(exc)})  # <- FPP505
""",
    ],
    "FPP506": [
        """
import aioredis  # <- FPP506
import asyncio_redis  # <- FPP506
from databases import Database  # <- FPP506
""",
    ],
}

QUIET: dict[str, list[str]] = {
    "FPP101": [
        """
from contextlib import asynccontextmanager
from sqlalchemy.ext.asyncio import create_async_engine

def build(url):
    return create_async_engine(url, pool_pre_ping=True)

@asynccontextmanager
async def lifespan(app):
    engine = create_async_engine(URL, pool_pre_ping=True)
    try:
        yield
    finally:
        await engine.dispose()

def create_engine(url):
    return url

engine = create_engine("a local function with the same name")

if __name__ == "__main__":
    create_async_engine("sqlite+aiosqlite://")
""",
    ],
    "FPP107": [
        """
import httpx
import redis
import redis.asyncio as aioredis
from contextlib import asynccontextmanager

sync_client = redis.Redis()  # sync: no event loop to bind to (FPP204 covers its use in async)

def get_redis():
    return aioredis.Redis()

class Settings:
    def __init__(self, url):
        self.url = url

settings = Settings("redis://localhost")

@asynccontextmanager
async def lifespan(app):
    async with httpx.AsyncClient() as client:
        app.state.http = client
        app.state.redis = get_redis()
        yield
        await app.state.redis.aclose()
""",
    ],
    "FPP102": [
        """
from contextlib import AsyncExitStack, asynccontextmanager
from sqlalchemy.ext.asyncio import create_async_engine

@asynccontextmanager
async def lifespan(app):
    engine = create_async_engine(URL)
    try:
        yield {"engine": engine}
    finally:
        await engine.dispose()

@asynccontextmanager
async def lifespan_with_stack(app):
    async with AsyncExitStack() as stack:
        engine = create_async_engine(URL)
        stack.push_async_callback(engine.dispose)
        yield

def make_engine(url):
    return create_async_engine(url)
""",
    ],
    "FPP103": [
        """
from fastapi import FastAPI

app = FastAPI(lifespan=lifespan)
bus.on_event("user_created")
bus.add_event_handler(handler)

class Router:
    def include(self, router):
        for handler in router.on_startup:
            self.add_event_handler("startup", handler)
""",
    ],
    "FPP104": [
        """
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

def engines(settings, options):
    a = create_async_engine(settings.url, pool_pre_ping=True)
    b = create_async_engine(settings.url, pool_recycle=1800)
    c = create_async_engine("sqlite+aiosqlite:///app.db")
    d = create_async_engine(settings.url, poolclass=NullPool)
    e = create_async_engine(settings.url, **options)
    return a, b, c, d, e

async def create_database(admin_url, name):
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f"CREATE DATABASE {name}"))
    finally:
        await engine.dispose()
""",
    ],
    "FPP105": [
        """
from functools import lru_cache, cache

@lru_cache
def get_settings() -> Settings:
    return Settings()

@lru_cache
def get_client_settings():
    return ClientSettings()

@cache
def parse_rates(text: str) -> dict[str, int]:
    return {}

def get_redis_client(request):
    return request.app.state.redis
""",
    ],
    "FPP106": [
        """
from contextlib import asynccontextmanager
from fastapi import FastAPI, Request

@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.engine = make()
    yield

app = FastAPI(lifespan=lifespan)

async def get_db(request: Request):
    async with AsyncSession(request.app.state.engine) as session:
        yield session
""",
    ],
    "FPP201": [
        """
import requests

def fetch(url):
    return requests.get(url)

async def handler(client, url):
    def in_thread():
        return requests.get(url)
    try:
        return await client.get(url)
    except requests.exceptions.HTTPError:
        raise
""",
    ],
    "FPP202": [
        """
import asyncio
import time

def backoff():
    time.sleep(1)

async def handler():
    await asyncio.sleep(1)
    sleep(1)  # a local name, not time.sleep
""",
    ],
    "FPP203": [
        """
import anyio
from aiofiles import open as aopen

def load(path):
    with open(path) as f:
        return f.read()

async def handler(path):
    async with aopen(path) as f:
        data = await f.read()
    return data + await anyio.Path(path).read_text()
""",
        """
from aiofiles import open

async def handler(path):
    async with open(path) as f:
        return await f.read()
""",
    ],
    "FPP204": [
        """
import redis
from redis.asyncio import Redis
from redis import asyncio as aioredis

cache = Redis.from_url("redis://localhost")

def sync_job():
    return redis.Redis().get("k")

async def handler(key):
    client = aioredis.Redis()
    return await cache.get(key) or await client.get(key)
""",
    ],
    "FPP205": [
        """
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

@router.get("/items")
def list_items(db: Session = Depends(get_db)):
    return db.query(Item).all()

@router.get("/users")
async def list_users(db: AsyncSession = Depends(get_db)):
    return (await db.scalars(select(User))).all()
""",
    ],
    "FPP206": [
        """
import pandas as pd
from fastapi import UploadFile

@app.post("/upload-csv")
def upload_csv(file: UploadFile):
    return len(pd.read_csv(file.file))

@app.post("/upload")
async def upload(file: UploadFile):
    chunk = await file.read(65536)
    position = file.file.tell()
    return {"name": file.filename, "type": file.content_type}
""",
    ],
    "FPP207": [
        """
from fastapi import UploadFile

@app.post("/upload")
async def upload(file: UploadFile, request: Request):
    while chunk := await file.read(1024 * 1024):
        pass
    body = await request.body()
    async with aiofiles.open("x") as f:
        return await f.read()
""",
    ],
    "FPP208": [
        """
import asyncio

async def run():
    proc = await asyncio.create_subprocess_exec("ls", "-l")
    await proc.communicate()
""",
    ],
    "FPP209": [
        """
import asyncio

async def handler(pool):
    await asyncio.to_thread(work)
    return await asyncio.get_running_loop().run_in_executor(pool, work)

async def copy_file(path):
    run_in_executor = asyncio.get_running_loop().run_in_executor
    return await run_in_executor(pool, open, path)

async def log_in_thread(event):
    ctx = contextvars.copy_context()
    await asyncio.get_running_loop().run_in_executor(None, lambda: ctx.run(write, event))
""",
    ],
    "FPP210": [
        """
import aiosmtplib
import logging

async def send_email(email: str):
    await aiosmtplib.send(message, hostname="localhost")

def write_audit_log(email: str):
    logging.getLogger("audit").info("sent to %s", email)

@app.post("/send")
async def send(email: str, background_tasks: BackgroundTasks):
    background_tasks.add_task(send_email, email)
    background_tasks.add_task(write_audit_log, email)
""",
    ],
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
    "FPP401": [
        """
from httpx import ASGITransport, AsyncClient

async def test_it():
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as ac:
        pass
""",
    ],
    "FPP402": [
        """
import pytest
import pytest_asyncio

@pytest_asyncio.fixture
async def async_client():
    yield Client()

@pytest.fixture
def sync_fixture():
    return 1
""",
        """
import pytest

pytestmark = pytest.mark.anyio

@pytest.fixture
async def client():
    yield Client()
""",
    ],
    "FPP403": [
        """
async def get_db():
    async with SessionLocal() as session:
        yield session

async def override_get_db():
    async with TestSession() as session:
        yield session

def test_update_user():
    app.dependency_overrides[get_db] = override_get_db
    app.dependency_overrides[get_settings] = lambda: Settings(debug=True)

@pytest_asyncio.fixture
async def client(session: AsyncSession):
    # the session fixture owns the transaction and rolls it back
    app.dependency_overrides[get_db_session] = lambda: session

    async def use_fixture_session():
        return session

    app.dependency_overrides[get_db] = use_fixture_session
    yield make_client()
""",
    ],
    "FPP501": [
        """
import httpx
from contextlib import asynccontextmanager

@asynccontextmanager
async def lifespan(app):
    async with httpx.AsyncClient() as client:
        app.state.http = client
        yield

@app.get("/users/{user_id}")
async def get_user(user_id: int, request: Request):
    return (await request.app.state.http.get(f"/u/{user_id}")).json()

async def test_client():
    async with httpx.AsyncClient(base_url="http://test") as ac:
        pass
""",
    ],
    "FPP502": [
        """
import pytest
from contextlib import asynccontextmanager

async def get_session():
    async with SessionLocal() as session:
        try:
            yield session
        except Exception:
            await session.rollback()
            raise

async def get_tx_session():
    async with SessionLocal() as session:
        yield session
        await session.commit()

SessionDep = Annotated[AsyncSession, Depends(get_tx_session, scope="function")]

@pytest.fixture
async def db():
    async with SessionLocal() as session:
        yield session
        await session.commit()

@asynccontextmanager
async def lifespan(app):
    yield
    await seed.commit()

async def export_rows(session):
    async for row in await session.stream(select(Row)):
        yield row
    await session.commit()

async def get_connection():
    async with engine.begin() as conn:
        yield "not the transaction"
""",
    ],
    "FPP503": [
        """
from fastapi.middleware.cors import CORSMiddleware

app.add_middleware(CORSMiddleware, allow_origins=["*"])
app.add_middleware(
    CORSMiddleware, allow_origins=["https://app.example.com"], allow_credentials=True
)
""",
    ],
    "FPP504": [
        """
app.add_middleware(CORSMiddleware, allow_methods=["GET", "POST", "PATCH", "DELETE"])
app.add_middleware(CORSMiddleware, allow_methods=["*"])

@app.patch("/users/{user_id}")
async def update_user(user_id: int, update: UserUpdate):
    return update.model_dump(exclude_unset=True)
""",
        """
app.add_middleware(CORSMiddleware, allow_methods=["GET", "POST"])

@app.post("/users")
async def create_user(user: UserCreate):
    return user
""",
    ],
    "FPP505": [
        """
from fastapi import HTTPException

@app.post("/payment")
async def pay(request: PaymentRequest):
    try:
        return await process(request)
    except InsufficientFunds as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    except ValueError:
        raise HTTPException(status_code=400, detail="invalid amount")

@app.exception_handler(InsufficientFunds)
async def insufficient(request, exc):
    return JSONResponse(status_code=409, content={"detail": str(exc)})
""",
    ],
    "FPP506": [
        """
from redis import asyncio as aioredis
import redis.asyncio
from sqlalchemy.ext.asyncio import create_async_engine
""",
    ],
}
