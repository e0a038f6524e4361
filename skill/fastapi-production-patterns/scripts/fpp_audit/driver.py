"""The command line: find the files, run every registered rule, honour `# noqa: FPP###`,
print text or JSON, and exit 0, 1 or 2."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

from .framework import CHECKS, RULES, Finding
from .module import Module

SKIP_DIRS = {".venv", "venv", "node_modules", ".git", "__pycache__", "site-packages"}


def python_files(paths: list[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            yield from (Path(root) / f for f in sorted(files) if f.endswith(".py"))


NOQA = re.compile(r"#\s*noqa\s*:\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*)", re.IGNORECASE)


def silenced(lines: list[str], line: int, code: str) -> bool:
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    match = NOQA.search(text)
    return match is not None and code in re.split(r"[\s,]+", match["codes"].upper())


def audit_source(
    source: str, path: str, config_dir: Path, wanted: Callable[[str], bool] = lambda code: True
) -> tuple[list[Finding], bool]:
    """Findings of one file, and whether it has a PATCH route (FPP504 looks across files)."""
    module = Module(path, source, config_dir)
    findings = []
    for rule_, check in CHECKS:
        if not wanted(rule_.code):
            continue
        for node in check(module):
            line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
            if not silenced(module.lines, line, rule_.code):
                findings.append(Finding(path, line, col, rule_.code, rule_.message, rule_.fix))
    return sorted(findings, key=lambda f: (f.line, f.col, f.code)), module.has_patch_routes


def selector(select: str | None, ignore: str | None) -> Callable[[str], bool]:
    chosen = [c.strip().upper() for c in (select or "FPP").split(",") if c.strip()]
    dropped = [c.strip().upper() for c in (ignore or "").split(",") if c.strip()]
    return lambda code: (
        code.startswith(tuple(chosen)) and not code.startswith(tuple(dropped) or ("\0",))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="audit.py",
        description="Find common FastAPI production mistakes (fastapi-production-patterns skill).",
        epilog="Exit status: 0 clean, 1 findings, 2 usage error or unreadable/unparsable file. "
        "Silence one finding with `# noqa: FPP###` on its line (a bare `# noqa` does not count).",
    )
    parser.add_argument("paths", nargs="*", help="files or directories (recursing into *.py)")
    parser.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    parser.add_argument("--select", help="comma-separated codes or prefixes to run (default: all)")
    parser.add_argument("--ignore", help="comma-separated codes or prefixes to skip")
    parser.add_argument("--list-rules", action="store_true", help="print the rules and exit")
    args = parser.parse_args(argv)
    if args.list_rules:
        for r in sorted(RULES.values(), key=lambda r: r.code):
            overlap = f" [ruff also: {r.ruff}]" if r.ruff else ""
            print(f"{r.code} {r.name}: {r.message}{overlap}\n    fix: {r.fix}")
        return 0
    if not args.paths:
        parser.error("give at least one file or directory")
    unknown = [p for p in args.paths if not Path(p).exists()]
    if unknown:
        parser.error(f"no such file or directory: {', '.join(unknown)}")
    wanted = selector(args.select, args.ignore)
    findings: list[Finding] = []
    errors: list[dict[str, str]] = []
    patch_routes = False
    for path in python_files(args.paths):
        try:
            source = path.read_text(encoding="utf-8-sig")
            found, has_patch = audit_source(source, str(path), path.resolve().parent, wanted)
        except (SyntaxError, UnicodeDecodeError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, SyntaxError):  # newer syntax than this interpreter knows?
                error += f" (parsed with Python {sys.version_info[0]}.{sys.version_info[1]})"
            errors.append({"path": str(path), "error": error})
            continue
        findings += found
        patch_routes |= has_patch
    if not patch_routes:
        findings = [f for f in findings if f.code != "FPP504"]
    if args.format == "json":
        print(json.dumps({"findings": [asdict(f) for f in findings], "errors": errors}, indent=2))
    else:
        for f in findings:
            print(f"{f.path}:{f.line}:{f.col}: {f.code} {f.message} (fix: {f.fix})")
        for e in errors:
            print(f"{e['path']}: cannot audit: {e['error']}", file=sys.stderr)
    return 2 if errors else 1 if findings else 0
