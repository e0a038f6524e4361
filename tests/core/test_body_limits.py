"""Bodies over MAX_JSON_BYTES are refused with a 413 problem before anything parses them,
whether the client declares the size or streams a chunked body (failure mode G1)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import func, select

from app.main import create_app
from app.users.models import User
from tests.conftest import PASSWORD, make_settings
from tests.files.conftest import multipart

LIMIT = 2048


@pytest.fixture
def application(database_url: str) -> FastAPI:
    return create_app(make_settings(database_url, max_json_bytes=LIMIT))


async def count_users(application: FastAPI) -> int:
    async with application.state.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


def sign_up_body(size: int) -> bytes:
    """A sign-up body of exactly `size` bytes, padded in `name` (so over 100 bytes or so it
    is well-formed JSON that the schema refuses)."""
    base = {"email": "big@example.com", "password": PASSWORD, "name": ""}
    padding = size - len(json.dumps(base).encode())
    assert padding >= 0
    body = json.dumps({**base, "name": "n" * padding}).encode()
    assert len(body) == size
    return body


def assert_413(response: Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "content_too_large"
    assert str(LIMIT) in body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]


async def test_body_over_the_limit_with_content_length_is_a_413(
    client: AsyncClient, application: FastAPI
) -> None:
    body = sign_up_body(LIMIT + 1)
    response = await client.post(
        "/api/v1/users", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.request.headers["content-length"] == str(LIMIT + 1)
    assert_413(response)
    assert await count_users(application) == 0


async def test_chunked_body_over_the_limit_is_a_413(
    client: AsyncClient, application: FastAPI
) -> None:
    # A valid sign-up, padded with whitespace JSON allows: were the limit not enforced while
    # streaming, this would create a user.
    payload = json.dumps({"email": "chunked@example.com", "password": PASSWORD, "name": "C"})
    chunks = [payload.encode()[:10], b" " * 1024, b" " * 1024, payload.encode()[10:]]
    sent: list[int] = []

    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            sent.append(len(chunk))
            yield chunk

    response = await client.post(
        "/api/v1/users", content=stream(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_413(response)
    # The refusal came while streaming: the last chunk was never read.
    assert sent == [10, 1024, 1024]
    assert await count_users(application) == 0


async def test_chunked_body_under_the_limit_is_accepted(
    client: AsyncClient, application: FastAPI
) -> None:
    payload = json.dumps({"email": "small@example.com", "password": PASSWORD, "name": "S"})

    async def stream() -> AsyncIterator[bytes]:
        yield payload.encode()[:7]
        yield payload.encode()[7:]

    response = await client.post(
        "/api/v1/users", content=stream(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert await count_users(application) == 1


async def test_body_at_the_limit_is_parsed(client: AsyncClient) -> None:
    # Exactly LIMIT bytes passes the size check and reaches validation (the padded name is too
    # long for the schema, hence 422 rather than 201).
    response = await client.post(
        "/api/v1/users", content=sign_up_body(LIMIT), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "name"]]


async def test_form_body_over_the_limit_is_a_413(client: AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/token", data={"username": "a@example.com", "password": "p" * (LIMIT + 1)}
    )
    assert_413(response)


@pytest.mark.parametrize("declared", ["abc", "-1", "1e3", "12 34", ""])
async def test_a_content_length_that_is_not_a_number_is_a_400(
    client: AsyncClient, application: FastAPI, declared: str
) -> None:
    response = await client.post(
        "/api/v1/users",
        content=sign_up_body(200),
        headers={"Content-Type": "application/json", "Content-Length": declared},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "bad_request"
    assert body["request_id"] == response.headers["x-request-id"]
    assert await count_users(application) == 0


@pytest.mark.parametrize(
    "content_type", ["text/csv", "application/octet-stream", "multipart/form-data; boundary=x"]
)
@pytest.mark.parametrize("path", ["/api/v1/users", "/api/v1/auth/refresh"])
async def test_the_limit_follows_the_route_not_the_content_type(
    client: AsyncClient, application: FastAPI, content_type: str, path: str
) -> None:
    """A large body sent to a JSON route with an upload's Content-Type gets the JSON limit:
    before, a 95 MiB text/csv body to POST /users was read whole before its 422 (+180 MiB of
    RSS per request, +740 MiB for four at once). Declared or streamed, it is refused as it
    arrives."""
    declared = await client.post(
        path, content=b"\x00" * (LIMIT * 4), headers={"Content-Type": content_type}
    )
    assert_413(declared)

    body = ChunkedBody(LIMIT * 64, chunk=LIMIT // 2)
    streamed = await client.post(path, content=body, headers={"Content-Type": content_type})
    assert_413(streamed)
    assert body.pulled <= LIMIT * 2, "refused as its bytes arrive, not after reading it all"
    assert await count_users(application) == 0


class ChunkedBody:
    """A body of `size` bytes sent without a Content-Length, counting what the server pulled."""

    def __init__(self, size: int, chunk: int) -> None:
        self.size, self.chunk, self.pulled = size, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.size:
            self.pulled += self.chunk
            yield b"\x00" * self.chunk


async def test_an_upload_route_takes_a_body_far_over_the_json_limit(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    """The routes marked `accepts_large_body` get MAX_UPLOAD_BYTES, declared or streamed."""
    form = multipart(filename="big.bin")
    content = b"u" * (LIMIT * 8)
    declared = await client.post(
        "/api/v1/files",
        content=form.body(content),
        headers=form.headers(form.length(len(content)), **user_headers),
    )
    assert declared.status_code == 201, declared.text
    assert declared.json()["size"] == len(content)
