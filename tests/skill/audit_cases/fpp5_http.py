"""Audit cases of FPP5xx, HTTP surface: see __init__.py."""

FLAGGED: dict[str, list[str]] = {
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
