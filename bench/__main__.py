"""The benchmarks: every claim and every common mistake of the skill, naive against ours.

    .venv/bin/python -m bench SCENARIO [SCENARIO ...]   # one or a few
    .venv/bin/python -m bench --quick                   # all, small sizes (< 3 min, quiet machine)
    .venv/bin/python -m bench --all                     # all, full sizes (`make bench`)
    .venv/bin/python -m bench users_me [--rounds 3 ...] # the GET /users/me load run, its own flags
    .venv/bin/python -m bench --list

Raw results go to bench/results/<stamp>.jsonl; bench/RESULTS.md is rewritten. See bench/README.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench import harness
from bench.scenarios import SCENARIOS, describe


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "users_me" and len(argv) > 1:
        # Its own flags (--rounds, --connections, ...): the original load benchmark, unchanged.
        from bench import users_me

        users_me.main(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("scenarios", nargs="*", help="scenario names (see --list)")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--all", action="store_true", help="every scenario")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--admin-url",
        default=harness.DEFAULT_ADMIN_URL,
        help="PostgreSQL URL allowed to CREATE DATABASE (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.list:
        for name in SCENARIOS:
            print(f"{name:<16} {describe(name)}")
        return 0
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; see --list")
    names = args.scenarios or (list(SCENARIOS) if args.quick or args.all else [])
    if not names:
        parser.error("name a scenario, or pass --quick or --all")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with tempfile.TemporaryDirectory(prefix="bench-fpp-") as tmp:
        ctx = harness.Context(
            quick=args.quick, admin_url=args.admin_url, work_dir=Path(tmp), stamp=stamp
        )
        command = "python -m bench " + " ".join(argv)
        failures = harness.run_scenarios(names, SCENARIOS, ctx, command.strip())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
