"""Audit cases of FPP4xx, tests: see __init__.py."""

FLAGGED: dict[str, list[str]] = {
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
}

QUIET: dict[str, list[str]] = {
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
}
