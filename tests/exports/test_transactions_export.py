"""POST /exports/transactions: a job streams the caller's transactions into a CSV file in
storage, in constant memory, reporting progress; GET /jobs/{id}/result downloads it."""

from __future__ import annotations

import csv
import hashlib
import io
import tracemalloc
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import insert

from app.core.db import utcnow
from app.core.storage import StoredObject
from app.exports.service import COLUMNS, export_transactions
from app.wallet.models import Transaction
from tests.jobs.conftest import WaitFor
from tests.notifications.conftest import API, Person, new_person

EXPORTS = f"{API}/exports/transactions"


async def download(client: AsyncClient, who: Person, job_id: str) -> list[list[str]]:
    response = await client.get(f"{API}/jobs/{job_id}/result", headers=who.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.reader(io.StringIO(response.text)))


async def test_an_export_holds_the_callers_transactions(
    client: AsyncClient, wait_for: WaitFor
) -> None:
    ada = await new_person(client, name="Ada", balance="30.00")
    bob = await new_person(client, name="Bob", balance="5.00")
    paid = await client.post(
        f"{API}/payments",
        json={"payee_id": bob.id, "amount": "10.25", "description": 'Dinner, "the usual"'},
        headers=ada.headers,
    )
    assert paid.status_code == 201, paid.text

    response = await client.post(EXPORTS, headers=ada.headers)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "exports.transactions"
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    done = await wait_for(job["id"])
    assert done.status == "succeeded", done.error
    assert done.progress == 100

    header, *rows = await download(client, ada, job["id"])
    assert tuple(header) == COLUMNS
    listed = (await client.get(f"{API}/transactions", headers=ada.headers)).json()["items"]
    # Oldest first, the same rows the API lists (newest first), field for field.
    assert [row[0] for row in rows] == [tx["id"] for tx in reversed(listed)]
    top_up, payment = rows
    assert top_up[1:5] == ["top_up", "30.00", "30.00", ""]
    assert payment[1:6] == ["payment_sent", "10.25", "19.75", str(bob.id), 'Dinner, "the usual"']
    assert payment[6] == paid.json()["created_at"].replace("Z", "+00:00")
    assert done.result is not None
    assert done.result["rows"] == 2

    shown = (await client.get(f"{API}/jobs/{job['id']}", headers=ada.headers)).json()
    assert (shown["status"], shown["progress"], shown["result"]["rows"]) == ("succeeded", 100, 2)
    # Bob's export holds Bob's side only.
    theirs = await client.post(EXPORTS, headers=bob.headers)
    assert (await wait_for(theirs.json()["id"])).status == "succeeded"
    _, *bob_rows = await download(client, bob, theirs.json()["id"])
    assert [row[1] for row in bob_rows] == ["top_up", "payment_received"]


async def test_an_export_is_private(client: AsyncClient, wait_for: WaitFor) -> None:
    ada = await new_person(client, name="Ada", balance="1.00")
    eve = await new_person(client, name="Eve")
    job = (await client.post(EXPORTS, headers=ada.headers)).json()
    assert (await wait_for(job["id"])).status == "succeeded"
    for path in (f"{API}/jobs/{job['id']}", f"{API}/jobs/{job['id']}/result"):
        response = await client.get(path, headers=eve.headers)
        assert response.status_code == 404, path
        assert response.json()["code"] == "job_not_found"
    assert (await client.post(EXPORTS)).status_code == 401
    bad_token = {"Authorization": "Bearer not-a-token"}
    assert (await client.post(EXPORTS, headers=bad_token)).status_code == 401


async def test_a_description_cannot_smuggle_a_spreadsheet_formula(
    client: AsyncClient, wait_for: WaitFor
) -> None:
    ada = await new_person(client, name="Ada", balance="5.00")
    bob = await new_person(client, name="Bob")
    formula = '=HYPERLINK("http://evil.example","click")'
    paid = await client.post(
        f"{API}/payments",
        json={"payee_id": bob.id, "amount": "1.00", "description": formula},
        headers=ada.headers,
    )
    assert paid.status_code == 201, paid.text
    job = (await client.post(EXPORTS, headers=bob.headers)).json()
    assert (await wait_for(job["id"])).status == "succeeded"
    _, received = await download(client, bob, job["id"])
    assert received[5] == "'" + formula


async def test_an_empty_export_is_a_header(client: AsyncClient, wait_for: WaitFor) -> None:
    ada = await new_person(client, name="Ada")
    job = (await client.post(EXPORTS, headers=ada.headers)).json()
    done = await wait_for(job["id"])
    assert done.status == "succeeded"
    assert await download(client, ada, job["id"]) == [list(COLUMNS)]
    assert done.result is not None
    assert done.result["rows"] == 0


async def _many_transactions(application: FastAPI, user_id: int, count: int) -> None:
    start = utcnow() - timedelta(days=1)
    rows = [
        {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "kind": "top_up",
            "amount_minor": 100,
            "balance_after_minor": 100 * (n + 1),
            # Some share a timestamp: the keyset's tie-breaker (the id) must hold.
            "created_at": start + timedelta(milliseconds=n // 3),
            "description": f"row {n}",
        }
        for n in range(count)
    ]
    async with application.state.db.sessionmaker() as session:
        for first in range(0, count, 5000):
            await session.execute(insert(Transaction), rows[first : first + 5000])
        await session.commit()


class CountingSink:
    """A storage that keeps only a size and a digest (and, when asked, the rows' ids): what
    the export itself holds in memory is then all that tracemalloc sees (LocalStorage gathers
    1 MiB before each write, which would hide a small leak)."""

    def __init__(self, *, keep_ids: bool = False) -> None:
        self.keep_ids = keep_ids
        self.ids: list[str] = []

    async def save(self, key: str, chunks: Any, *, max_bytes: int | None = None) -> Any:
        size = 0
        digest = hashlib.sha256()
        async for chunk in chunks:
            size += len(chunk)
            digest.update(chunk)
            if self.keep_ids:
                self.ids.extend(line.split(",", 1)[0] for line in chunk.decode().splitlines())
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())


# The export function itself, called directly: the backend does not matter here.
@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
async def test_a_large_export_streams_in_constant_memory(
    client: AsyncClient, app: Any, application: FastAPI
) -> None:
    ada = await new_person(client, name="Ada")
    seen: list[int] = []

    async def progress(percent: int) -> None:
        seen.append(percent)

    async def run(storage: CountingSink) -> tuple[dict[str, Any], int]:
        if storage.keep_ids:
            result = await export_transactions(
                application.state.db.sessionmaker,
                storage,  # type: ignore[arg-type]
                "export.csv",
                user_id=ada.id,
                progress=progress,
                batch_size=500,
            )
            return result, 0
        tracemalloc.start()
        try:
            result = await export_transactions(
                application.state.db.sessionmaker,
                storage,  # type: ignore[arg-type]
                "export.csv",
                user_id=ada.id,
                progress=progress,
                batch_size=500,
            )
            return result, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    await _many_transactions(application, ada.id, 2_000)
    small, small_peak = await run(CountingSink())
    await _many_transactions(application, ada.id, 18_000)
    seen.clear()
    large, large_peak = await run(CountingSink())

    assert (small["rows"], large["rows"]) == (2_000, 20_000)
    # Ten times the rows (about 2 MB of CSV), not ten times the memory: the peak is set by one
    # batch of rows, not by the size of the export.
    assert large["bytes"] > 1_500_000
    print(f"tracemalloc peak: {small_peak} B for 2000 rows, {large_peak} B for 20000")
    assert large_peak < 1.5 * small_peak + 256 * 1024, (small_peak, large_peak)
    assert large_peak < 2 * 1024 * 1024, large_peak
    assert seen == sorted(seen)
    assert len(seen) == 40
    assert seen[-1] == 99
    # Every row once: none skipped or repeated at a batch edge (rows share timestamps).
    ids = CountingSink(keep_ids=True)
    await run(ids)
    assert ids.ids[0] == "id"
    assert len(set(ids.ids[1:])) == len(ids.ids[1:]) == 20_000
