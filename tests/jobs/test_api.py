"""GET /jobs, GET /jobs/{id}, GET /jobs/{id}/result and POST /jobs/{id}/cancel, on both
backends: owners see their jobs, nobody else does (but a superuser), and bad input is a 4xx."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.jobs.conftest import Enqueue, WaitFor, enqueue_in
from tests.notifications.conftest import API, new_person

JOBS = f"{API}/jobs"


async def test_a_job_is_read_by_its_owner_and_a_superuser_only(
    client: AsyncClient,
    application: FastAPI,
    superuser_headers: dict[str, str],
    wait_for: WaitFor,
) -> None:
    ada = await new_person(client, name="Ada")
    eve = await new_person(client, name="Eve")
    job_id = await enqueue_in(application, "tests.echo", ada.id, value=[1, "two"])
    await wait_for(job_id)

    response = await client.get(f"{JOBS}/{job_id}", headers=ada.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id",
        "kind",
        "status",
        "progress",
        "result",
        "error",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
    }
    assert (body["id"], body["kind"], body["status"]) == (str(job_id), "tests.echo", "succeeded")
    assert (body["progress"], body["attempts"], body["error"]) == (100, 1, None)
    assert body["result"] == {"echo": [1, "two"], "attempt": 1}

    hidden = await client.get(f"{JOBS}/{job_id}", headers=eve.headers)
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "job_not_found"
    assert (await client.get(f"{JOBS}/{job_id}", headers=superuser_headers)).status_code == 200
    assert (await client.get(f"{JOBS}/{job_id}")).status_code == 401


async def test_jobs_are_listed_newest_first_page_by_page(
    client: AsyncClient, application: FastAPI, wait_for: WaitFor
) -> None:
    ada = await new_person(client, name="Ada")
    other = await new_person(client, name="Other")
    ids = [await enqueue_in(application, "tests.echo", ada.id, value=n) for n in range(5)]
    await enqueue_in(application, "tests.echo", other.id, value="not yours")
    for job_id in ids:
        await wait_for(job_id)

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(JOBS, params=params, headers=ada.headers)).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(job_id) for job_id in reversed(ids)]

    failed = await client.get(JOBS, params={"status": "failed"}, headers=ada.headers)
    assert failed.json()["items"] == []
    done = await client.get(JOBS, params={"status": "succeeded"}, headers=ada.headers)
    assert len(done.json()["items"]) == 5


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (JOBS, {"cursor": "%%%not-base64"}),
        (JOBS, {"limit": 0}),
        (JOBS, {"limit": 201}),
        (JOBS, {"status": "exploded"}),
        (f"{JOBS}/not-a-uuid", {}),
        (f"{JOBS}/1%20OR%201=1/result", {}),
    ],
)
async def test_bad_input_is_a_422_problem(
    client: AsyncClient, user_headers: dict[str, str], path: str, params: dict[str, Any]
) -> None:
    response = await client.get(path, params=params, headers=user_headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_unknown_job_is_404(client: AsyncClient, user_headers: dict[str, str]) -> None:
    for method, path in (
        ("GET", f"{JOBS}/{uuid.uuid4()}"),
        ("GET", f"{JOBS}/{uuid.uuid4()}/result"),
        ("POST", f"{JOBS}/{uuid.uuid4()}/cancel"),
    ):
        response = await client.request(method, path, headers=user_headers)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "job_not_found"


async def test_the_result_of_a_running_job_is_409_and_of_a_job_without_a_file_404(
    client: AsyncClient, application: FastAPI, wait_for: WaitFor
) -> None:
    ada = await new_person(client, name="Ada")
    slow = await enqueue_in(application, "tests.slow", ada.id, seconds=20, steps=200)
    await wait_for(slow, until=lambda job: job.status == "running")
    response = await client.get(f"{JOBS}/{slow}/result", headers=ada.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "job_not_finished"

    echo = await enqueue_in(application, "tests.echo", ada.id, value=1)
    await wait_for(echo)
    response = await client.get(f"{JOBS}/{echo}/result", headers=ada.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "job_result_not_found"

    cancelled = await client.post(f"{JOBS}/{slow}/cancel", headers=ada.headers)
    assert cancelled.status_code == 202


async def test_cancel_a_queued_job_and_not_a_finished_one(
    client: AsyncClient, application: FastAPI, enqueue_job: Enqueue, wait_for: WaitFor
) -> None:
    ada = await new_person(client, name="Ada")
    eve = await new_person(client, name="Eve")
    # Four long jobs fill the runner's four slots; the fifth waits, queued.
    busy = [
        await enqueue_in(application, "tests.slow", ada.id, seconds=20, steps=200) for _ in range(4)
    ]
    for job_id in busy:
        await wait_for(job_id, until=lambda job: job.status == "running")
    queued = await enqueue_in(application, "tests.echo", ada.id, value="never")

    assert (await client.post(f"{JOBS}/{queued}/cancel", headers=eve.headers)).status_code == 404
    response = await client.post(f"{JOBS}/{queued}/cancel", headers=ada.headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    again = await client.post(f"{JOBS}/{queued}/cancel", headers=ada.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "job_finished"
    for job_id in busy:
        assert (
            await client.post(f"{JOBS}/{job_id}/cancel", headers=ada.headers)
        ).status_code == 202
    # The cancelled job never runs, even once a slot is free.
    later = await enqueue_in(application, "tests.echo", ada.id, value="after")
    assert (await wait_for(later)).status == "succeeded"
    assert (await wait_for(queued)).status == "cancelled"
    shown = (await client.get(f"{JOBS}/{queued}", headers=ada.headers)).json()
    assert (shown["status"], shown["attempts"]) == ("cancelled", 0)


async def test_metrics_count_jobs_by_state(
    client: AsyncClient, application: FastAPI, wait_for: WaitFor
) -> None:
    import asyncio

    ada = await new_person(client, name="Ada")
    for value in range(2):
        await wait_for(await enqueue_in(application, "tests.echo", ada.id, value=value))
    await wait_for(await enqueue_in(application, "tests.rejects", ada.id, reason="no"))
    expected = {
        'jobs{state="succeeded"} 2.0',
        'jobs{state="failed"} 1.0',
        'jobs{state="queued"} 0.0',
    }
    for _ in range(100):  # the count is refreshed every sweep interval (0.2 s here)
        text = (await client.get("/metrics")).text
        if expected <= set(text.splitlines()):
            break
        await asyncio.sleep(0.05)
    assert expected <= set(text.splitlines()), [
        line for line in text.splitlines() if line.startswith("jobs")
    ]
