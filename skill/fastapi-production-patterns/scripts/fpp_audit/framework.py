"""The rules' shared vocabulary: what a rule is, what it finds, the `@rule` registry
that the families (fpp1_lifecycle ... fpp5_http) fill on import, and small AST helpers."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .module import Module


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    message: str
    fix: str
    ruff: str = ""  # the ruff rule that already reports (part of) this, if any


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    col: int
    code: str
    message: str
    fix: str


RULES: dict[str, Rule] = {}
CHECKS: list[tuple[Rule, Callable[[Module], Iterable[ast.AST]]]] = []  # filled by @rule


Check = Callable[["Module"], Iterable[ast.AST]]


def rule(code: str, name: str, message: str, fix: str, ruff: str = "") -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        RULES[code] = Rule(code, name, message, fix, ruff)
        CHECKS.append((RULES[code], check))
        return check

    return register


def is_mapped(stmt: ast.AnnAssign) -> bool:
    """An ORM column: `total: Mapped[float]`."""
    ann = stmt.annotation
    return isinstance(ann, ast.Subscript) and ast.unparse(ann.value).endswith("Mapped")


def kwarg(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def words(name: str) -> set[str]:
    return set(re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower().split("_"))
