"""Audit cases of FPP1xx, lifecycle of engines, clients and the app: see __init__.py."""

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
}
