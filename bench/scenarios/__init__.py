"""The registry: scenario name -> function(ctx) -> ScenarioResult, imported only when run.

The order is the order of `--quick` and `--all`: cheap in-process scenarios first."""

from __future__ import annotations

import importlib

from bench.harness import Context, Scenario, ScenarioResult

# name -> (module under bench.scenarios, one-line description)
_MODULES: dict[str, tuple[str, str]] = {
    "response_validation": ("mutation", "claim 3: backend bugs caught by response_model"),
    "exclude_unset": ("exclude_unset", "mistake: PATCH without exclude_unset wipes fields"),
    "blocking_requests": ("blocking", "mistake: requests in async def vs httpx.AsyncClient"),
    "run_in_executor": ("blocking", "mistake: run_in_executor vs to_thread+limiter vs async"),
    "test_mistakes": ("test_mistakes", "mistakes: sync fixtures with async tests, global state"),
    "test_time": ("testtime", "claim 2: seed's per-test engine + create_all vs ours"),
    "lifecycle": ("lifecycle", "claim 1: engine per request / at import vs lifespan pool"),
    "pool_recycle": ("pool_recycle", "mistake: no pool_recycle when idle sessions are dropped"),
    "uploads": ("uploads", "claim 4: peak RSS, await file.read() vs streaming"),
    "imports": ("imports", "CSV import rows/s: pandas vs ours, SQLite and PostgreSQL"),
    "users_me": ("users_me", "GET /users/me load: the service vs a raw-asyncpg app"),
}


def _runner(name: str) -> Scenario:
    module_name, _ = _MODULES[name]

    def run(ctx: Context) -> ScenarioResult:
        module = importlib.import_module(f"bench.scenarios.{module_name}")
        result: ScenarioResult = module.run(name, ctx)
        return result

    return run


SCENARIOS: dict[str, Scenario] = {name: _runner(name) for name in _MODULES}


def describe(name: str) -> str:
    return _MODULES[name][1]
