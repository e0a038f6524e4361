"""`expose(..., long_running=True)`: 202 and a job (app.jobs) whose result is the
function's return value, read back through GET /jobs/{id} as a client would. Runs on the
in-process backend, and on Redis under `make test-services` (this app then consumes the
stream too, as a worker process would)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from pydantic import Field

from app.core.settings import Settings
from app.main import API_PREFIX
from app.tools.router import make_exposer
from app.users.models import User
from tests.conftest import Login, SignUp
from tests.tools.conftest import WaitForJob, tools_app

jobs = make_exposer(prefix="/lr", kind_prefix="test_expose_jobs")
BASE = f"{API_PREFIX}/lr"
SECRET = "postgres://admin:hunter2@db/prod"
THREADS: dict[str, int] = {}


@dataclass
class Report:
    title: str
    owner: str
    currency: str


@jobs.expose(long_running=True)
def slow_sum(values: Annotated[list[Decimal], Field(min_length=1, max_length=1000)]) -> Decimal:
    """Add up many amounts (a stand-in for slow, sync work)."""
    THREADS["slow_sum"] = threading.get_ident()
    return sum(values, Decimal("0"))


@jobs.expose(long_running=True)
async def report(user: User, settings: Settings, title: str) -> Report:
    """A report for the caller: the job runs as the user who started it."""
    return Report(title, user.email, settings.currency)


@jobs.expose(long_running=True)
def label(ctx: str, arguments: int = 1) -> str:
    """Parameter names the job machinery also uses."""
    return f"{ctx}:{arguments}"


@jobs.expose(long_running=True)
def refuse(amount: int) -> int:
    """Refuse every amount, as a function with rules does."""
    raise ValueError(f"amount {amount} is over the limit")


@jobs.expose(long_running=True)
def crash() -> int:
    """Fail the way a bug does."""
    raise RuntimeError(SECRET)


def ordered(low: int, high: int) -> None:
    if high < low:
        raise ValueError("high is below low")


@jobs.expose(long_running=True, check=ordered)
def span(low: int, high: int) -> int:
    """Checked before its job is queued."""
    return high - low


@pytest.fixture
def application(settings: Settings) -> FastAPI:
    application = tools_app(settings)
    application.include_router(jobs.router, prefix=API_PREFIX)
    return application


async def start(client: AsyncClient, headers: dict[str, str], name: str, body: object) -> str:
    response = await client.post(f"{BASE}/{name}", json=body, headers=headers)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == f"test_expose_jobs.{name}"
    assert job["status"] in {"queued", "running", "succeeded"}
    return str(job["id"])


async def test_the_jobs_result_is_the_return_value(
    client: AsyncClient, user_headers: dict[str, str], wait_for_job: WaitForJob
) -> None:
    job_id = await start(client, user_headers, "slow_sum", {"values": ["1.10", "2.20", 3]})
    job = await wait_for_job(job_id, user_headers)
    assert (job["status"], job["result"], job["error"]) == ("succeeded", "6.30", None)
    # A sync function runs in a worker thread, in a job as in a request.
    assert THREADS["slow_sum"] != threading.get_ident()


async def test_any_parameter_name_is_fine(
    client: AsyncClient, user_headers: dict[str, str], wait_for_job: WaitForJob
) -> None:
    job_id = await start(client, user_headers, "label", {"ctx": "a", "arguments": 2})
    assert (await wait_for_job(job_id, user_headers))["result"] == "a:2"


async def test_the_job_runs_as_the_caller(
    client: AsyncClient, sign_up: SignUp, login: Login, wait_for_job: WaitForJob
) -> None:
    user = await sign_up(email="reporter@example.com")
    headers = await login(user["email"])
    job = await wait_for_job(await start(client, headers, "report", {"title": "Q4"}), headers)
    assert job["result"] == {"title": "Q4", "owner": "reporter@example.com", "currency": "USD"}
    # The job is the caller's own: another user cannot see it.
    other = await sign_up()
    other_headers = await login(other["email"])
    assert (
        await client.get(f"{API_PREFIX}/jobs/{job['id']}", headers=other_headers)
    ).status_code == 404


async def test_the_functions_own_error_fails_the_job_with_its_problem(
    client: AsyncClient, user_headers: dict[str, str], wait_for_job: WaitForJob
) -> None:
    job = await wait_for_job(
        await start(client, user_headers, "refuse", {"amount": 7}), user_headers
    )
    assert job["status"] == "failed"
    assert job["error"] == "amount 7 is over the limit"
    assert job["result"] == {
        "status": 422,
        "code": "invalid_arguments",
        "detail": "amount 7 is over the limit",
    }
    assert job["attempts"] == 1


async def test_an_unexpected_error_fails_the_job_and_leaks_nothing(
    client: AsyncClient, user_headers: dict[str, str], wait_for_job: WaitForJob
) -> None:
    job = await wait_for_job(await start(client, user_headers, "crash", None), user_headers)
    assert job["status"] == "failed"
    assert job["result"]["code"] == "internal_error"
    assert SECRET not in str(job)
    assert "hunter2" not in str(job)
    assert job["attempts"] == 1  # a plain function may not be safe to run twice


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("slow_sum", {"values": []}),
        ("slow_sum", {"values": ["x"]}),
        ("slow_sum", {"values": [1], "extra": True}),
        ("report", {"title": "Q4", "user": {"id": 1}}),
        ("report", None),
        ("span", {"low": 2, "high": 1}),  # refused by its check
    ],
)
async def test_bad_arguments_are_a_422_and_queue_nothing(
    client: AsyncClient, user_headers: dict[str, str], name: str, body: object
) -> None:
    response = await client.post(f"{BASE}/{name}", json=body, headers=user_headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    listed = await client.get(f"{API_PREFIX}/jobs", headers=user_headers)
    assert listed.json()["items"] == []


async def test_arguments_its_check_accepts_are_queued(
    client: AsyncClient, user_headers: dict[str, str], wait_for_job: WaitForJob
) -> None:
    job_id = await start(client, user_headers, "span", {"low": 1, "high": 1})
    assert (await wait_for_job(job_id, user_headers))["result"] == 0


async def test_signed_in_only(client: AsyncClient) -> None:
    response = await client.post(f"{BASE}/slow_sum", json={"values": [1]})
    assert response.status_code == 401


async def test_the_list_marks_long_running_tools(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    items = (await client.get(BASE, headers=user_headers)).json()["items"]
    tools = {item["name"]: item for item in items}
    assert tools["slow_sum"]["long_running"] is True
    assert tools["slow_sum"]["path"] == f"{BASE}/slow_sum"
    assert tools["slow_sum"]["output_schema"] == {"type": "string"}  # a Decimal, as JSON
    assert set(tools["report"]["input_schema"]["properties"]) == {"title"}
