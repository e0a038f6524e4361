"""Scale-out without containers: what `compose up --scale api=N --scale worker=M` relies on.

The API runs as `python -m app serve --workers 2` and jobs run in two `python -m app worker`
processes, all on one PostgreSQL database, one Redis and one shared storage directory. Then:

- jobs are run by both workers (and a CSV uploaded through the API is read by a worker);
- `/metrics`, whichever API process answers it, counts the requests of both (Prometheus
  multiprocess mode: each process writes its own file in PROMETHEUS_MULTIPROC_DIR);
- SIGTERM to every process ends each with status 0 and leaves no database connection behind.

Which worker ran a job is read from the workers' logs: a worker's log names the id of each job
it ran (the jobs table records no worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.engine import make_url

from tests.conftest import PASSWORD, REQUIRE_SERVICES, ROOT, TEST_REDIS_URL, require_postgres
from tests.e2e.conftest import (
    _LAUNCHER,
    Server,
    _read_output,
    admin_query,
    free_port,
    server_environment,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

API_PROCESSES = 2
WORKERS = 2
EXPORT_JOBS = 24
# Requests sent on fresh connections, so the kernel hands them to both API processes.
PROBE_REQUESTS = 120
PROBE_CONCURRENCY = 8
ADMIN_EMAIL = "admin@example.com"
DEADLINE_SECONDS = 120
STARTUP_DEADLINE_SECONDS = 300


def require_redis() -> None:
    if not TEST_REDIS_URL:
        if REQUIRE_SERVICES:
            pytest.fail("TEST_REQUIRE_SERVICES=1 but TEST_REDIS_URL is not set")
        pytest.skip("needs Redis: set TEST_REDIS_URL=redis://...")


@pytest.fixture
async def processes() -> AsyncIterator[list[Server]]:
    """Every process the test starts; killed (by pid) in teardown whatever happened."""
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            # The whole process group: `serve --workers` has children of its own.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            with anyio.move_on_after(10):
                await server.process.wait()
            if server.reader is not None:
                server.reader.cancel()
                with anyio.move_on_after(5):
                    await asyncio.gather(server.reader, return_exceptions=True)


async def launch(argv: list[str], env: dict[str, str], base_url: str = "") -> Server:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _LAUNCHER,
        *argv,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # a process group of its own, killed whole in teardown
    )
    server = Server(process, base_url, env["DATABASE_URL"])
    server.reader = asyncio.create_task(_read_output(server))
    return server


async def wait_until_live(server: Server) -> None:
    """Two server processes importing and starting on a loaded machine take a while."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as client:
        with anyio.move_on_after(STARTUP_DEADLINE_SECONDS):
            while server.process.returncode is None:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/health/live")).status_code == 200:
                        return
                await anyio.sleep(0.2)
    pytest.fail(
        f"server {server.pid} not live (exit code {server.process.returncode}):\n{server.log}"
    )


async def wait_for_line(server: Server, text: str) -> None:
    with anyio.move_on_after(STARTUP_DEADLINE_SECONDS):
        while not any(text in line for line in server.lines):
            if server.process.returncode is not None:
                break
            await anyio.sleep(0.1)
        else:
            return
    pytest.fail(f"{text!r} never appeared in the output of {server.pid}:\n{server.log}")


async def wait_for_jobs(client: httpx.AsyncClient, headers: dict[str, str], ids: list[str]) -> dict:
    finished: dict[str, dict] = {}
    with anyio.fail_after(DEADLINE_SECONDS):
        while len(finished) < len(ids):
            for job_id in ids:
                if job_id in finished:
                    continue
                job = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
                if job["status"] in {"succeeded", "failed", "cancelled"}:
                    finished[job_id] = job
            await anyio.sleep(0.2)
    return finished


async def requests_by_process(metrics_dir: Path, route: str) -> dict[int, float]:
    """The count of `route`'s requests in each API process's own file (counter_<pid>.db)."""
    return await anyio.to_thread.run_sync(_requests_by_process, metrics_dir, route)


def _requests_by_process(metrics_dir: Path, route: str) -> dict[int, float]:
    counts: dict[int, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        families = MultiProcessCollector.merge([str(path)], accumulate=True)
        counts[pid] = sum(
            sample.value
            for family in families
            if family.name == "http_requests"
            for sample in family.samples
            if sample.name == "http_requests_total" and sample.labels.get("route") == route
        )
    return counts


def scraped_requests(metrics: str, route: str) -> float:
    pattern = rf'^http_requests_total\{{[^}}]*route="{re.escape(route)}"[^}}]*\}} ([0-9.e+]+)$'
    return sum(float(value) for value in re.findall(pattern, metrics, re.MULTILINE))


async def connections_to(database: str) -> int:
    [(count,)] = await admin_query(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = :db", db=database
    )
    assert isinstance(count, int)
    return count


async def test_two_api_processes_and_two_workers(
    fresh_database: str, processes: list[Server], tmp_path: Path
) -> None:
    require_postgres()
    require_redis()
    metrics_dir = tmp_path / "metrics"
    env = server_environment(
        fresh_database,
        VAR_DIR=str(tmp_path / "var"),
        STORAGE_DIR=str(tmp_path / "shared-files"),  # the volume every host mounts
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        FIRST_SUPERUSER_EMAIL=ADMIN_EMAIL,
        FIRST_SUPERUSER_PASSWORD=PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    api = await launch(
        ["serve", "--workers", str(API_PROCESSES), "--host", "127.0.0.1", "--port", str(port)],
        env,
        f"http://127.0.0.1:{port}",
    )
    processes.append(api)
    await wait_until_live(api)
    workers = [await launch(["worker", "--concurrency", "2"], env) for _ in range(WORKERS)]
    processes.extend(workers)
    for worker in workers:
        await wait_for_line(worker, "worker started")

    async with api.client() as client:
        await client.post(
            "/api/v1/users",
            json={"email": "ann@example.com", "password": PASSWORD, "name": "Ann"},
        )
        token = await client.post(
            "/api/v1/auth/token", data={"username": "ann@example.com", "password": PASSWORD}
        )
        assert token.status_code == 200, token.text
        ann = {"Authorization": f"Bearer {token.json()['access_token']}"}
        token = await client.post(
            "/api/v1/auth/token", data={"username": ADMIN_EMAIL, "password": PASSWORD}
        )
        assert token.status_code == 200, token.text
        admin = {"Authorization": f"Bearer {token.json()['access_token']}"}

        job_ids: list[str] = []
        for _ in range(EXPORT_JOBS):
            started = await client.post("/api/v1/exports/transactions", headers=ann)
            assert started.status_code == 202, started.text
            assert started.headers["Location"] == f"/api/v1/jobs/{started.json()['id']}"
            job_ids.append(started.json()["id"])
        csv = "email,name\nbo@example.com,Bo\ncy@example.com,Cy\n"
        imported = await client.post(
            "/api/v1/imports/users",
            headers=admin,
            files={"file": ("users.csv", csv, "text/csv")},
        )
        assert imported.status_code == 202, imported.text
        import_id = imported.json()["id"]
        admin_jobs = await wait_for_jobs(client, admin, [import_id])
        jobs = await wait_for_jobs(client, ann, job_ids)

    assert {job["status"] for job in jobs.values()} == {"succeeded"}, jobs
    # The file went to storage through an API process and was read by a worker process.
    assert admin_jobs[import_id]["status"] == "succeeded", admin_jobs
    assert admin_jobs[import_id]["result"]["imported"] == 2
    ran = {
        worker.pid: {job_id for job_id in [*job_ids, import_id] if job_id in worker.log}
        for worker in workers
    }
    print(f"jobs per worker: { {pid: len(ids) for pid, ids in ran.items()} }")
    assert set.union(*ran.values()) == {*job_ids, import_id}, ran
    assert all(ran.values()), f"a worker ran no job: {ran}"

    # Requests on fresh connections (no keep-alive), so both API processes accept some.
    route = "/health/ready"
    before = sum((await requests_by_process(metrics_dir, route)).values())
    limits = httpx.Limits(max_keepalive_connections=0)
    semaphore = anyio.Semaphore(PROBE_CONCURRENCY)

    async def probe(client: httpx.AsyncClient) -> None:
        async with semaphore:
            assert (await client.get(route)).status_code == 200

    async with httpx.AsyncClient(base_url=api.base_url, timeout=30, limits=limits) as client:
        async with anyio.create_task_group() as group:
            for _ in range(PROBE_REQUESTS):
                group.start_soon(probe, client)
        # The count is written after the response is sent: wait until all are in.
        with anyio.fail_after(30):
            while True:
                counted = sum((await requests_by_process(metrics_dir, route)).values())
                if counted >= before + PROBE_REQUESTS:
                    break
                await anyio.sleep(0.1)
        per_process = await requests_by_process(metrics_dir, route)
        scraped = scraped_requests((await client.get("/metrics")).text, route)
    print(f"requests of {route} per API process: {per_process}")
    serving = {pid: count for pid, count in per_process.items() if count}
    assert len(serving) == API_PROCESSES, per_process
    # One process answered the scrape, and it reported the requests of both.
    assert scraped == sum(per_process.values()) == before + PROBE_REQUESTS
    assert all(count < scraped for count in serving.values())

    database = make_url(fresh_database).database
    assert database is not None
    assert await connections_to(database) > 0
    for process in [api, *workers]:
        process.send_signal(signal.SIGTERM)
    for process in [api, *workers]:
        code = await process.wait(DEADLINE_SECONDS)
        assert code == 0, f"{process.pid} exited with {code}\n{process.log}"
        assert "Traceback" not in process.log, process.log
    remaining = await connections_to(database)
    deadline = time.monotonic() + 10  # backends leave a moment after their client goes
    while remaining and time.monotonic() < deadline:
        await anyio.sleep(0.2)
        remaining = await connections_to(database)
    assert remaining == 0
    # The metrics directory is the operator's (set explicitly): it is kept, with both files.
    assert len(await requests_by_process(metrics_dir, route)) >= API_PROCESSES
