"""The skill's `scripts/audit.py` (and its `fpp_audit/` package): each rule flags its mistake and
leaves close look-alikes alone; the command line keeps its contract (output format, JSON, exit
codes, noqa, select/ignore); it runs as a standalone script; and this repository passes its own
audit."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from tests.skill.audit_cases import FLAGGED, QUIET

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "skill" / "fastapi-production-patterns" / "scripts" / "audit.py"
PACKAGE = SCRIPT.with_name("fpp_audit")  # the rules and the driver; audit.py only starts them
MARK = re.compile(r"#\s*<-\s*(FPP\d{3})")
FINDING_LINE = re.compile(
    r"^(?P<path>.+):(?P<line>\d+):(?P<col>\d+): (?P<code>FPP\d{3}) .+ \(fix: .+\)$"
)


def load_audit() -> ModuleType:
    """The package from its folder, which is not on sys.path; importing it registers every rule."""
    spec = importlib.util.spec_from_file_location(
        "fpp_audit", PACKAGE / "__init__.py", submodule_search_locations=[str(PACKAGE)]
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Its relative imports and the dataclasses find the package here while it is being built.
    sys.modules["fpp_audit"] = module
    spec.loader.exec_module(module)
    return module


audit = load_audit()


def found_lines(source: str, code: str, config_dir: Path) -> list[int]:
    findings, has_patch_routes = audit.audit_source(source, "src/case.py", config_dir)
    if code == "FPP504" and not has_patch_routes:
        return []  # the command line drops FPP504 when no audited file has a PATCH route
    return sorted(f.line for f in findings if f.code == code)


def cases(table: dict[str, list[str]]) -> list[object]:
    return [
        pytest.param(code, textwrap.dedent(source), id=f"{code}-{i}")
        for code, sources in table.items()
        for i, source in enumerate(sources)
    ]


@pytest.mark.parametrize(("code", "source"), cases(FLAGGED))
def test_rule_flags_exactly_the_marked_lines(code: str, source: str, tmp_path: Path) -> None:
    marked = [
        number
        for number, line in enumerate(source.splitlines(), start=1)
        for match in MARK.finditer(line)
        if match[1] == code
    ]
    assert marked, "a flagged case marks at least one line"
    assert found_lines(source, code, tmp_path) == marked


@pytest.mark.parametrize(("code", "source"), cases(QUIET))
def test_rule_leaves_look_alikes_alone(code: str, source: str, tmp_path: Path) -> None:
    assert found_lines(source, code, tmp_path) == []


def test_every_rule_has_flagged_and_quiet_cases() -> None:
    assert set(FLAGGED) == set(audit.RULES)
    assert set(QUIET) == set(audit.RULES)


def test_every_rule_has_a_message_and_a_fix() -> None:
    for rule in audit.RULES.values():
        assert re.fullmatch(r"FPP\d{3}", rule.code)
        assert rule.message
        assert rule.fix
        assert "\n" not in rule.message + rule.fix


def test_async_fixture_is_fine_when_the_project_runs_pytest_asyncio_in_auto_mode(
    tmp_path: Path,
) -> None:
    source = textwrap.dedent(FLAGGED["FPP402"][0])
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\nasyncio_mode = "auto"\n')
    (tmp_path / "tests").mkdir()
    assert found_lines(source, "FPP402", tmp_path / "tests") == []
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "pytest.ini").write_text("[pytest]\nasyncio_mode = strict\n")
    assert found_lines(source, "FPP402", tmp_path / "other") != []


def test_audit_reads_real_world_code_without_crashing() -> None:
    """Every rule runs over the installed FastAPI, Starlette and httpx sources (a sweep of all
    installed packages once found a crash on calls inside lambdas)."""
    import fastapi
    import httpx
    import starlette

    files = [
        path
        for package in (fastapi, starlette, httpx)
        for path in Path(package.__file__).parent.rglob("*.py")
    ]
    assert len(files) > 100
    for path in files:
        audit.audit_source(path.read_text(encoding="utf-8"), str(path), path.parent)


# --- the command line, run as a standalone script ------------------------------------------------

BAD = """\
import time
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine(URL, pool_pre_ping=True)

async def handler():
    time.sleep(1)
"""


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -I audit.py ...`: isolated mode, no site-packages, from a foreign directory."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(SCRIPT), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_clean_code_exits_0(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("async def handler():\n    return 1\n")
    result = run(tmp_path, cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_findings_exit_1_one_line_each(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(BAD)
    result = run("bad.py", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [FINDING_LINE.match(line) is not None for line in lines] == [True, True]
    assert [line.split(" ")[:2] for line in lines] == [
        ["bad.py:4:10:", "FPP101"],
        ["bad.py:7:5:", "FPP202"],
    ]
    assert "ASYNC251" not in result.stdout  # the ruff overlap is for --list-rules


def test_json_output(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(BAD)
    result = run("--format", "json", "bad.py", cwd=tmp_path)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["errors"] == []
    assert [(f["path"], f["line"], f["col"], f["code"]) for f in report["findings"]] == [
        ("bad.py", 4, 10, "FPP101"),
        ("bad.py", 7, 5, "FPP202"),
    ]
    assert all(f["message"] and f["fix"] for f in report["findings"])


def test_noqa_names_the_rule(tmp_path: Path) -> None:
    noqa = BAD.replace("sleep(1)", "sleep(1)  # noqa: E501, FPP202 - deliberate")
    (tmp_path / "a.py").write_text(noqa.replace("True)", "True)  # noqa: FPP999"))
    (tmp_path / "b.py").write_text(BAD.replace("sleep(1)", "sleep(1)  # noqa"))
    result = run("--format", "json", tmp_path, cwd=tmp_path)
    found = {(Path(f["path"]).name, f["code"]) for f in json.loads(result.stdout)["findings"]}
    assert found == {("a.py", "FPP101"), ("b.py", "FPP101"), ("b.py", "FPP202")}


def test_select_and_ignore(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(BAD)
    selected = run("--select", "FPP2", "bad.py", cwd=tmp_path)
    assert [line.split(" ")[1] for line in selected.stdout.splitlines()] == ["FPP202"]
    ignored = run("--ignore", "FPP101,FPP202", "bad.py", cwd=tmp_path)
    assert (ignored.returncode, ignored.stdout) == (0, "")


def test_unparsable_file_exits_2_and_says_which(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(BAD)
    (tmp_path / "broken.py").write_text("def f(:\n")
    result = run(tmp_path, cwd=tmp_path)
    assert result.returncode == 2
    assert "FPP202" in result.stdout  # the other files are still audited
    assert "broken.py" in result.stderr
    assert "SyntaxError" in result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run(cwd=tmp_path).returncode == 2
    missing = run("no/such/dir", cwd=tmp_path)
    assert missing.returncode == 2
    assert "no/such/dir" in missing.stderr
    assert run("--format", "xml", ".", cwd=tmp_path).returncode == 2


def test_directories_recurse_but_skip_environments_and_hidden_folders(tmp_path: Path) -> None:
    for folder in ["src/pkg", ".venv/lib", "venv", "node_modules/x", ".git", ".hidden"]:
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "mod.py").write_text(BAD)
    (tmp_path / "src" / "notes.txt").write_text(BAD)
    result = run("--format", "json", ".", cwd=tmp_path)
    paths = {Path(f["path"]).as_posix() for f in json.loads(result.stdout)["findings"]}
    assert paths == {"src/pkg/mod.py"}


def test_cors_patch_rule_looks_across_files(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(
        'app.add_middleware(CORSMiddleware, allow_methods=["GET", "POST"])\n'
    )
    alone = run("main.py", cwd=tmp_path)
    assert (alone.returncode, alone.stdout) == (0, "")
    (tmp_path / "routes.py").write_text(
        '@router.patch("/users/{user_id}")\nasync def update(user_id: int):\n    return 1\n'
    )
    together = run(tmp_path, cwd=tmp_path)
    assert together.returncode == 1
    assert "main.py:1:" in together.stdout
    assert "FPP504" in together.stdout


def test_list_rules_names_every_rule_and_the_ruff_overlap(tmp_path: Path) -> None:
    result = run("--list-rules", cwd=tmp_path)
    assert result.returncode == 0
    listed = re.findall(r"^(FPP\d{3}) ", result.stdout, flags=re.MULTILINE)
    assert listed == sorted(audit.RULES)
    assert "ASYNC210" in result.stdout
    assert "ASYNC251" in result.stdout
    assert "ASYNC230" in result.stdout


def test_help_documents_noqa_and_exit_codes(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "noqa" in result.stdout
    assert "Exit status" in result.stdout


def test_repository_passes_its_own_audit() -> None:
    result = run("app", "migrations", cwd=ROOT)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
