"""Export tests run on both job backends (the fixtures of tests/jobs)."""

from __future__ import annotations

from tests.jobs.conftest import application, backend, enqueue_job, job_row, settings, wait_for

__all__ = ["application", "backend", "enqueue_job", "job_row", "settings", "wait_for"]
