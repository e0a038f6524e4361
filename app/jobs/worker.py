"""`python -m app worker`: run jobs from Redis until SIGTERM or SIGINT, then stop as the web
process does (the grace period, then unfinished jobs back to queued)."""

from __future__ import annotations

import asyncio
import signal

import httpx
import structlog

from app.core.db import open_database
from app.core.email import open_mailer
from app.core.observability import configure_logging
from app.core.settings import Settings
from app.core.storage import open_storage
from app.jobs.queue import registered_kinds
from app.jobs.runner import JobRunner

log = structlog.get_logger("app.jobs")


async def run_worker(settings: Settings) -> None:
    configure_logging(fmt=settings.effective_log_format, level=settings.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    db = await open_database(settings)
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as http:
            runner = JobRunner(
                settings=settings,
                db=db,
                http=http,
                mailer=open_mailer(settings),
                runs_jobs=True,
                storage=open_storage(settings),
            )
            await runner.start()
            log.info(
                "worker started",
                concurrency=settings.job_concurrency,
                kinds=sorted(registered_kinds()),
                database=db.engine.dialect.name,
            )
            try:
                await stop.wait()
                log.info("worker stopping")
            finally:
                await runner.stop()
    finally:
        await db.dispose()
    log.info("worker stopped")
