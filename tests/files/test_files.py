"""POST /files streams an upload to storage (hashed, size-limited as it arrives) and the other
endpoints read, stream and delete it; every malformed upload is a clear 4xx and leaves nothing
behind (no row, no bytes, no temporary file)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI
from httpx import AsyncClient

from tests.conftest import Login, SignUp
from tests.files.conftest import (
    FILES,
    UPLOAD_LIMIT,
    CountingBody,
    file_rows,
    multipart,
    pattern_chunks,
    stored_objects,
)


async def upload(
    client: AsyncClient, headers: dict[str, str], content: bytes, **form: Any
) -> dict[str, object]:
    body = multipart(**form)
    response = await client.post(
        FILES, content=body.body(content), headers=body.headers(None, **headers)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_upload_read_download_delete(
    client: AsyncClient, app: FastAPI, user_headers: dict[str, str], storage_dir: Path
) -> None:
    content = b"hello, world\n" * 1000
    created = await upload(
        client, user_headers, content, filename="notes.txt", content_type="text/plain"
    )
    assert created["filename"] == "notes.txt"
    assert created["content_type"] == "text/plain"
    assert created["size"] == len(content)
    assert created["sha256"] == hashlib.sha256(content).hexdigest()
    file_url = f"{FILES}/{created['id']}"

    meta = await client.get(file_url, headers=user_headers)
    assert meta.status_code == 200
    assert meta.json() == created

    download = await client.get(f"{file_url}/content", headers=user_headers)
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["content-type"].startswith("text/plain")
    assert download.headers["content-length"] == str(len(content))
    assert download.headers["content-disposition"].startswith('attachment; filename="notes.txt"')
    assert download.headers["x-content-type-options"] == "nosniff"

    assert len(await stored_objects(storage_dir)) == 1
    deleted = await client.delete(file_url, headers=user_headers)
    assert deleted.status_code == 204
    for url in (file_url, f"{file_url}/content"):
        gone = await client.get(url, headers=user_headers)
        assert gone.status_code == 404
        assert gone.json()["code"] == "file_not_found"
    assert await stored_objects(storage_dir) == []
    assert await file_rows(app) == 0
    again = await client.delete(file_url, headers=user_headers)
    assert again.status_code == 404


async def test_upload_is_streamed_chunk_by_chunk_and_hashed(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    size = UPLOAD_LIMIT - 4096  # under the limit with the multipart framing
    body = multipart(filename="data.bin", content_type="application/octet-stream")
    stream = CountingBody([body.head, *pattern_chunks(size, chunk=50_000), body.tail])
    response = await client.post(
        FILES, content=stream, headers=body.headers(body.length(size), **user_headers)
    )
    assert response.status_code == 201, response.text
    whole = b"".join(pattern_chunks(size, chunk=50_000))
    assert response.json()["size"] == size
    assert response.json()["sha256"] == hashlib.sha256(whole).hexdigest()
    download = await client.get(f"{FILES}/{response.json()['id']}/content", headers=user_headers)
    assert download.content == whole


async def test_an_empty_file_and_an_odd_filename(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    created = await upload(
        client,
        user_headers,
        b"",
        filename='C:\\Users\\me\\r\u00e9sum\u00e9 "final".pdf',
        content_type="not a media type",
    )
    assert created["size"] == 0
    assert created["sha256"] == hashlib.sha256(b"").hexdigest()
    # Only the last path segment is kept, and a content type that is not one is replaced.
    assert created["filename"] == 'r\u00e9sum\u00e9 "final".pdf'
    assert created["content_type"] == "application/octet-stream"
    download = await client.get(f"{FILES}/{created['id']}/content", headers=user_headers)
    assert download.status_code == 200
    assert download.content == b""
    assert (
        "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf"
        in (download.headers["content-disposition"])
    )


async def test_other_fields_before_the_file_are_skipped(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    created = await upload(client, user_headers, b"payload", before=[("note", "x" * 5000)])
    assert created["size"] == len(b"payload")


async def test_over_the_limit_is_413_at_once_and_nothing_is_kept(
    client: AsyncClient, app: FastAPI, user_headers: dict[str, str], storage_dir: Path
) -> None:
    size = 20 * UPLOAD_LIMIT
    body = multipart()
    stream = CountingBody([body.head, *pattern_chunks(size), body.tail])
    response = await client.post(
        FILES, content=stream, headers=body.headers(body.length(size), **user_headers)
    )
    assert response.status_code == 413
    assert response.json()["code"] == "content_too_large"
    assert response.headers["content-type"] == "application/problem+json"
    assert stream.pulled <= UPLOAD_LIMIT + 64 * 1024  # refused without reading it to the end
    assert await stored_objects(storage_dir) == []
    assert await file_rows(app) == 0


async def test_a_body_longer_than_its_content_length_is_refused_while_streaming(
    client: AsyncClient, app: FastAPI, user_headers: dict[str, str], storage_dir: Path
) -> None:
    size = 10 * UPLOAD_LIMIT
    body = multipart()
    stream = CountingBody([body.head, *pattern_chunks(size), body.tail])
    response = await client.post(
        FILES, content=stream, headers=body.headers(body.length(1000), **user_headers)
    )
    assert response.status_code == 400
    assert response.json()["code"] == "length_mismatch"
    assert stream.pulled < 2 * 64 * 1024
    assert await stored_objects(storage_dir) == []
    assert await file_rows(app) == 0


async def test_a_body_shorter_than_its_content_length_is_refused(
    client: AsyncClient, app: FastAPI, user_headers: dict[str, str], storage_dir: Path
) -> None:
    body = multipart()
    content = body.body(b"x" * 5000)
    response = await client.post(
        FILES, content=content, headers=body.headers(len(content) + 100, **user_headers)
    )
    assert response.status_code == 400
    assert response.json()["code"] == "length_mismatch"
    assert await stored_objects(storage_dir) == []
    assert await file_rows(app) == 0


async def test_a_missing_content_length_is_411(
    client: AsyncClient, app: FastAPI, user_headers: dict[str, str], storage_dir: Path
) -> None:
    body = multipart()
    stream = CountingBody([body.head, b"x" * 1000, body.tail])  # sent chunked
    response = await client.post(FILES, content=stream, headers=body.headers(None, **user_headers))
    assert response.status_code == 411
    assert response.json()["code"] == "length_required"
    assert await stored_objects(storage_dir) == []


async def test_an_invalid_content_length_is_400(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    body = multipart()
    response = await client.post(
        FILES,
        content=body.body(b"x"),
        headers={"Content-Type": body.content_type, "Content-Length": "-5", **user_headers},
    )
    assert response.status_code == 400


async def test_broken_multipart_bodies_are_400_and_leave_nothing(
    client: AsyncClient, app: FastAPI, user_headers: dict[str, str], storage_dir: Path
) -> None:
    body = multipart()
    truncated = body.head + b"x" * 3000  # no closing boundary
    garbage = b"this is not multipart at all\r\n" * 100
    wrong_boundary = body.body(b"x").replace(body.boundary.encode(), b"z" * 32)
    bad_header = body.head.replace(b"Content-Type:", b"Content Type\x00") + b"x" + body.tail
    for content in (truncated, garbage, wrong_boundary, bad_header):
        response = await client.post(
            FILES, content=content, headers=body.headers(len(content), **user_headers)
        )
        assert response.status_code in (400, 422), (content[:60], response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] in ("malformed_multipart", "file_missing")
    assert await stored_objects(storage_dir) == []
    assert await file_rows(app) == 0


async def test_a_truncated_file_part_is_400(
    client: AsyncClient, app: FastAPI, user_headers: dict[str, str], storage_dir: Path
) -> None:
    body = multipart()
    content = body.head + b"x" * 3000
    response = await client.post(
        FILES, content=content, headers=body.headers(len(content), **user_headers)
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_multipart"
    assert await stored_objects(storage_dir) == []
    assert await file_rows(app) == 0


async def test_a_form_without_the_file_field_is_422(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    body = multipart(field="attachment")
    response = await client.post(
        FILES, content=body.body(b"x"), headers=body.headers(None, **user_headers)
    )
    assert response.status_code == 422
    assert response.json()["code"] == "file_missing"
    assert response.json()["errors"][0]["loc"] == ["body", "file"]


async def test_too_many_parts_is_400(client: AsyncClient, user_headers: dict[str, str]) -> None:
    body = multipart(before=[(f"f{i}", "v") for i in range(40)])
    response = await client.post(
        FILES, content=body.body(b"x"), headers=body.headers(None, **user_headers)
    )
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_parts"


async def test_not_multipart_is_415(client: AsyncClient, user_headers: dict[str, str]) -> None:
    for headers in (
        {"Content-Type": "application/json"},
        {"Content-Type": "multipart/form-data"},  # no boundary
        {},
    ):
        response = await client.post(FILES, content=b'{"file": 1}', headers=headers | user_headers)
        assert response.status_code == 415, headers
        assert response.json()["code"] == "unsupported_media_type"


async def test_upload_needs_a_token(client: AsyncClient, app: FastAPI) -> None:
    body = multipart()
    response = await client.post(FILES, content=body.body(b"x"), headers=body.headers(None))
    assert response.status_code == 401
    assert await file_rows(app) == 0


async def test_someone_elses_file_is_404_but_a_superuser_sees_it(
    client: AsyncClient,
    user_headers: dict[str, str],
    superuser_headers: dict[str, str],
    sign_up: SignUp,
    login: Login,
    storage_dir: Path,
) -> None:
    created = await upload(client, user_headers, b"private")
    other = await login((await sign_up())["email"])
    file_url = f"{FILES}/{created['id']}"
    for method, url in (
        ("GET", file_url),
        ("GET", f"{file_url}/content"),
        ("DELETE", file_url),
    ):
        response = await client.request(method, url, headers=other)
        assert response.status_code == 404, (method, url)
        assert response.json()["code"] == "file_not_found"
    assert len(await stored_objects(storage_dir)) == 1

    assert (await client.get(file_url, headers=superuser_headers)).status_code == 200
    download = await client.get(f"{file_url}/content", headers=superuser_headers)
    assert download.content == b"private"
    assert (await client.delete(file_url, headers=superuser_headers)).status_code == 204
    assert await stored_objects(storage_dir) == []


async def test_unknown_and_malformed_ids(client: AsyncClient, user_headers: dict[str, str]) -> None:
    missing = await client.get(f"{FILES}/{uuid.uuid4()}", headers=user_headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == "file_not_found"
    malformed = await client.get(f"{FILES}/not-a-uuid", headers=user_headers)
    assert malformed.status_code == 422


async def test_bytes_missing_from_storage_is_a_404_not_a_broken_200(
    client: AsyncClient, user_headers: dict[str, str], storage_dir: Path
) -> None:
    created = await upload(client, user_headers, b"soon gone")
    await anyio.Path(storage_dir / "files" / str(created["id"])).unlink()
    response = await client.get(f"{FILES}/{created['id']}/content", headers=user_headers)
    assert response.status_code == 404
    assert response.json()["code"] == "file_content_missing"
