"""Mistake: the dependency is global state. The app's repository is one module-level dict that
every test shares, so a test that counts what it created is right alone and wrong as soon as
another test writes at the same time (threads here, as xdist workers sharing one database
would). Each test creates 3 items, then checks the count."""

from __future__ import annotations

import threading

import pytest

ITEMS: dict[int, str] = {}  # the global "database" the dependency returns
LOCK = threading.Lock()
NEXT_ID = iter(range(1, 1_000_000))


def get_repository() -> dict[int, str]:
    return ITEMS


def create_item(repository: dict[int, str], name: str) -> None:
    with LOCK:
        repository[next(NEXT_ID)] = name


def run_test(name: str, ready: threading.Barrier | None) -> None:
    repository = get_repository()
    before = len(repository)
    for i in range(3):
        create_item(repository, f"{name}-{i}")
        if ready is not None:
            ready.wait(timeout=10)  # the other test writes between our writes, as in parallel
    assert len(repository) - before == 3, f"{name} saw {len(repository) - before} new items"


@pytest.mark.parametrize("parallel", [False, True], ids=["alone", "in-parallel"])
def test_counts_own_items(parallel: bool) -> None:
    ITEMS.clear()
    if not parallel:
        run_test("a", None)
        return
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def other() -> None:
        try:
            run_test("b", barrier)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        run_test("a", barrier)
    finally:
        thread.join(timeout=30)
    if errors:
        raise errors[0]
