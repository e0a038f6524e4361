"""Ours: the repository comes from a yield dependency (here a fixture standing in for
`Depends()` with yield): each test, and each concurrent request of it, has its own."""

from __future__ import annotations

import threading
from collections.abc import Generator

import pytest


def get_repository() -> Generator[dict[int, str]]:
    repository: dict[int, str] = {}
    yield repository
    repository.clear()


def run_test(name: str, ready: threading.Barrier | None) -> None:
    dependency = get_repository()
    repository = next(dependency)
    before = len(repository)
    for i in range(3):
        repository[len(repository) + 1] = f"{name}-{i}"
        if ready is not None:
            ready.wait(timeout=10)
    assert len(repository) - before == 3, f"{name} saw {len(repository) - before} new items"
    dependency.close()


@pytest.mark.parametrize("parallel", [False, True], ids=["alone", "in-parallel"])
def test_counts_own_items(parallel: bool) -> None:
    if not parallel:
        run_test("a", None)
        return
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def other() -> None:
        try:
            run_test("b", barrier)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        run_test("a", barrier)
    finally:
        thread.join(timeout=30)
    if errors:
        raise errors[0]
