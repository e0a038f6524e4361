"""Run the skill's snippet programs, each in a fresh forked process, sharing one import of the
heavy libraries (FastAPI, Pydantic, SQLAlchemy, httpx: seconds of CPU per interpreter start on
a busy machine, for programs that then run in milliseconds).

    python tests/skill/snippet_runner.py < jobs.json > results.json

jobs: [{"id", "kind": "python"|"pytest", "dir", "file"}]; results: {id: {"returncode",
"output"}}. Each child changes into its own directory, turns warnings into errors (as
`python -W error` would), and runs its file as `__main__`; a test module gets a fresh
`python -m pytest` instead (pytest must import its plugins itself). stdout and stderr go to
`output.txt` there. Linux/macOS only (fork).
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
import warnings

PRELOAD = (
    "asyncio",
    "anyio",
    "httpx",
    "pydantic",
    "fastapi",
    "fastapi.middleware.cors",
    "fastapi.security",
    "sqlalchemy",
    "sqlalchemy.ext.asyncio",
    "aiosqlite",
    "asgi_lifespan",
)
TIMEOUT_SECONDS = 120


def child(job: dict[str, str]) -> int:
    os.chdir(job["dir"])
    output = os.open("output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(output, 1)
    os.dup2(output, 2)
    sys.argv = [job["file"]]
    sys.path.insert(0, job["dir"])
    warnings.simplefilter("error")
    try:
        if job["kind"] == "pytest":  # its own interpreter: pytest wants to import plugins itself
            # Only pytest-asyncio: the other plugins installed here are this suite's business.
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
            arguments = ["-m", "pytest", "-q", "-W", "error", "-p", "pytest_asyncio.plugin"]
            arguments += ["-p", "no:cacheprovider", "-c", "pytest.ini"]
            os.execv(sys.executable, [sys.executable, *arguments, job["file"]])  # noqa: S606
        runpy.run_path(job["file"], run_name="__main__")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def main() -> None:
    for module in PRELOAD:
        __import__(module)
    jobs = json.load(sys.stdin)
    running: dict[int, dict[str, str]] = {}
    results: dict[str, dict[str, object]] = {}
    parallel = max(2, os.cpu_count() or 2)
    pending = list(jobs)
    while pending or running:
        while pending and len(running) < parallel:
            job = pending.pop(0)
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                signal_alarm(TIMEOUT_SECONDS)
                code = child(job)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
            running[pid] = job
        pid, status = os.wait()
        job = running.pop(pid)
        with open(os.path.join(job["dir"], "output.txt"), encoding="utf-8") as file:
            text = file.read()
        results[job["id"]] = {"returncode": os.waitstatus_to_exitcode(status), "output": text}
    json.dump(results, sys.stdout)


def signal_alarm(seconds: int) -> None:
    import signal

    signal.alarm(seconds)  # a hung program dies (SIGALRM) instead of hanging the suite


if __name__ == "__main__":
    main()
