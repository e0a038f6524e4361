"""The README's "First requests" run as written, against a live `python -m app serve`, so the
walkthrough cannot rot: the shell blocks of that section are joined into one script and run by
bash with curl. Only the server's address and the interpreter's path are substituted."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import StartServer, server_environment

pytestmark = pytest.mark.e2e

README_BASE_URL = "http://127.0.0.1:8000"
README_PYTHON = ".venv/bin/python"
# Looked up once, at import: a PATH search is blocking file-system work.
CURL = shutil.which("curl")
BASH = shutil.which("bash")


def walkthrough_script() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## First requests\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 3, "the walkthrough's shell blocks are gone"
    return "\n".join(blocks)


def json_documents(output: str) -> list[Any]:
    """The JSON bodies curl printed, one after the other (curl adds no newline)."""
    decoder = json.JSONDecoder()
    documents, position = [], 0
    while (start := output.find("{", position)) != -1:
        document, position = decoder.raw_decode(output, start)
        documents.append(document)
    return documents


def test_the_script_names_what_it_must() -> None:
    script = walkthrough_script()
    for needed in (
        README_BASE_URL,
        '"name": "Ann"',
        "/auth/token -d username=",  # the OAuth2 form, not JSON
        "4000000000000002",
        "/payments",
        "/imports/users",
        "%header{location}",
        "create-superuser",
    ):
        assert needed in script


async def test_the_readme_walkthrough_runs(
    start_server: StartServer, fresh_database: str, tmp_path: Path
) -> None:
    if CURL is None or BASH is None:
        pytest.skip("needs curl and bash")
    # As `make run` serves: development, jobs in the process (no Redis).
    # Development, as the README runs it: the sandbox gateway and its test cards.
    settings = {"ENVIRONMENT": "development", "REDIS_URL": "", "PAYMENT_GATEWAY": "sandbox"}
    server = await start_server(fresh_database, **settings)
    script = await anyio.to_thread.run_sync(walkthrough_script)
    script = script.replace(README_BASE_URL, server.base_url)
    script = script.replace(README_PYTHON, sys.executable)
    env = server_environment(
        fresh_database, **settings, VAR_DIR=str(tmp_path / "var"), PYTHONPATH=str(ROOT)
    )

    with anyio.fail_after(180):
        finished = await anyio.run_process(
            [BASH, "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, check=False
        )
    output = finished.stdout.decode()
    assert finished.returncode == 0, f"{output}\n{finished.stderr.decode()}\n{server.log}"

    documents = json_documents(output)
    index, ann, bob, me, top_up, declined, payment, wallet, *_, job = documents
    assert index["links"]["docs"] == "/docs"
    assert ann["name"] == "Ann"
    assert bob["email"] == "bob@example.com"
    assert me["id"] == ann["id"]
    assert (top_up["kind"], top_up["amount"], top_up["card_last4"]) == ("top_up", "50.00", "4242")
    assert (declined["status"], declined["code"]) == (402, "card_declined")
    assert (payment["kind"], payment["amount"]) == ("payment_sent", "12.50")
    assert wallet["balance"] == "37.50"
    assert re.search(r"^/api/v1/jobs/[0-9a-f-]{36}$", output, re.MULTILINE), output
    assert job["status"] == "succeeded", job
    assert job["result"]["imported"] == 1
    assert job["result"]["rejected"] == 1
    assert job["result"]["errors"][0]["line"] == 3
