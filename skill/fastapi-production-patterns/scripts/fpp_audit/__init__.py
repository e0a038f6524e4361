"""The FastAPI production-patterns audit behind `scripts/audit.py` (standard library only).

framework (Rule, Finding, the @rule registry, AST helpers), names (what the rules recognise),
module (one parsed file), pytest_config (the project's pytest-asyncio mode), one module per rule
family (fpp1_lifecycle ... fpp5_http), and driver (files, noqa, output, exit status). Importing
the package registers every family, in code order, before `main` can run.
"""

# Imported for their @rule registrations (in code order: FPP1xx first), not for their names.
from . import fpp1_lifecycle, fpp2_blocking, fpp3_pydantic_money, fpp4_tests, fpp5_http  # noqa: F401
from .driver import audit_source, main, selector
from .framework import CHECKS, RULES, Finding, Rule, rule
from .module import Module

__all__ = [
    "CHECKS",
    "RULES",
    "Finding",
    "Module",
    "Rule",
    "audit_source",
    "main",
    "rule",
    "selector",
]
