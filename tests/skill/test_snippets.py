"""Every fenced ``python`` block of the skill is checked, the way the comment above it declares:

    <!-- snippet: run -->                 a complete program: run with `python -W error`, exit 0
    <!-- snippet: pytest -->              a test module: pytest (strict asyncio mode) passes
    <!-- snippet: excerpt app/x.py -->    the block is in that file of this repository, verbatim
                                          (a uniformly indented copy counts: a method, a body)
    <!-- snippet: fails "text" -->        a deliberately wrong "before": exits non-zero (warnings
    <!-- snippet: pytest-fails "text" -->   are errors) and its output contains that exact text

A block with no declaration, or an unknown one, fails. The frontmatter, the size limits of
SKILL.md and the skill's relative links are checked here too. Programs run outside this process
(`snippet_runner.py`: one fork per program, in parallel, each in a directory of its own, on
SQLite), so nothing leaks between them or into the suite. A quoted text may contain `\"`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
SKILL = ROOT / "skill" / "fastapi-production-patterns"
PAGES = [SKILL / "SKILL.md", *sorted((SKILL / "references").glob("*.md"))]
DECLARATION = re.compile(
    r"<!--\s*snippet:\s*(?P<kind>run|pytest-fails|pytest|excerpt|fails)"
    r'(?:\s+(?P<arg>"(?:[^"\\]|\\.)*"|\S+))?\s*-->'
)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    code: str
    kind: str | None  # None: no declaration right above the block
    arg: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(SKILL)}:{self.line}"


def python_blocks(page: Path) -> list[Block]:
    tokens = MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8"))
    blocks = []
    for index, token in enumerate(tokens):
        if token.type != "fence" or token.info.strip().split(" ")[0] not in ("python", "py"):
            continue
        assert token.map is not None
        kind, arg = None, ""
        previous = tokens[index - 1] if index else None
        # "Right above": the comment is the block's previous token and ends on the line before.
        if previous is not None and previous.type == "html_block" and previous.map is not None:
            match = DECLARATION.fullmatch(previous.content.strip())
            if match and previous.map[1] == token.map[0]:
                kind, arg = match["kind"], unquote(match["arg"] or "")
        blocks.append(Block(page, token.map[0] + 1, token.content, kind, arg))
    return blocks


def unquote(arg: str) -> str:
    """`"text with \\" inside"` -> `text with " inside`."""
    if arg.startswith('"'):
        return re.sub(r"\\(.)", r"\1", arg[1:-1])
    return arg


BLOCKS = [block for page in PAGES for block in python_blocks(page)]
EXECUTED = {"run", "pytest", "fails", "pytest-fails"}


def prepare(block: Block, workdir: Path) -> dict[str, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    if block.kind in ("pytest", "pytest-fails"):
        # pytest-asyncio's defaults (strict mode), with the loop scope it asks to be set.
        ini = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        (workdir / "pytest.ini").write_text(ini, encoding="utf-8")
        (workdir / "test_snippet.py").write_text(block.code, encoding="utf-8")
        return {"id": block.id, "kind": "pytest", "dir": str(workdir), "file": "test_snippet.py"}
    (workdir / "snippet.py").write_text(block.code, encoding="utf-8")
    return {"id": block.id, "kind": "python", "dir": str(workdir), "file": "snippet.py"}


@pytest.fixture(scope="module")
def results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """The selected programs of the skill, run once by `snippet_runner.py` (forked, in
    parallel). Under pytest-xdist every worker collects every item, so the snippet tests form
    one `xdist_group`: one worker runs them, and runs the programs once."""
    selected = {
        item.callspec.params["block"].id
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and hasattr(item, "callspec")
        and "block" in item.callspec.params
    }
    root = tmp_path_factory.mktemp("snippets")
    jobs = [
        prepare(block, root / f"b{number}")
        for number, block in enumerate(BLOCKS)
        if block.kind in EXECUTED and block.id in selected
    ]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)  # a program sees the installed packages, not this repository
    finished = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("snippet_runner.py"))],
        input=json.dumps(jobs),
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    answer: dict[str, dict[str, Any]] = json.loads(finished.stdout)
    return answer


@pytest.mark.xdist_group("skill-snippets")
@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: block.id)
def test_snippet(
    block: Block,
    results: dict[str, dict[str, Any]],
) -> None:
    where = f"{block.page.relative_to(ROOT)}:{block.line}"
    if block.kind is None:
        pytest.fail(f"{where}: declare the block with <!-- snippet: ... --> on the line above")
    if block.kind == "excerpt":
        source = ROOT / block.arg
        assert source.is_file(), f"{where}: excerpt of {block.arg}, which does not exist"
        text = source.read_text(encoding="utf-8")
        excerpt = textwrap.dedent(block.code)
        found = any(textwrap.indent(excerpt, " " * width) in text for width in range(0, 17, 4))
        assert found, f"{where}: no longer verbatim in {block.arg}"
        return
    returncode, output = results[block.id]["returncode"], results[block.id]["output"]
    if block.kind in ("run", "pytest"):
        assert returncode == 0, f"{where}: exit {returncode}\n{output[-4000:]}"
    else:
        assert block.arg, f'{where}: say which error: <!-- snippet: {block.kind} "text" -->'
        assert returncode != 0, f"{where}: the wrong version ran cleanly\n{output}"
        assert block.arg in output, f"{where}: expected {block.arg!r} in\n{output[-4000:]}"


def frontmatter(page: Path) -> tuple[dict[str, object], list[str]]:
    text = page.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    assert match, "SKILL.md starts with a YAML frontmatter between --- lines"
    metadata = yaml.safe_load(match[1])
    assert isinstance(metadata, dict)
    return metadata, text[match.end() :].splitlines()


def test_skill_frontmatter_and_size() -> None:
    metadata, body = frontmatter(SKILL / "SKILL.md")
    assert metadata["name"] == SKILL.name
    description = metadata["description"]
    assert isinstance(description, str)
    assert 0 < len(description) <= 1024, len(description)
    assert len(body) < 500, f"SKILL.md body is {len(body)} lines"


def test_skill_md_links_every_reference() -> None:
    skill_md = (SKILL / "SKILL.md").read_text(encoding="utf-8")
    for page in PAGES[1:]:
        assert f"references/{page.name}" in skill_md, f"SKILL.md does not link {page.name}"
    assert len(BLOCKS) > 0


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings (code blocks left out)."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    headings = re.findall(r"^#+ (.*)$", text, re.M)
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings
    }


def test_relative_links_resolve() -> None:
    """Every relative link of the skill points at a file or folder that exists, and every
    `#anchor` into one of the skill's pages at a heading of that page."""
    link = re.compile(r"\]\((?!https?:|mailto:)([^)#\s]*)(?:#([^)]*))?\)")
    broken = []
    for page in PAGES:
        for target, anchor in link.findall(page.read_text(encoding="utf-8")):
            path = page.parent / target if target else page
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and path.suffix == ".md" and anchor not in heading_anchors(path):
                broken.append(f"{page.relative_to(ROOT)}: {target}#{anchor}")
    assert not broken, "broken links:\n" + "\n".join(broken)
