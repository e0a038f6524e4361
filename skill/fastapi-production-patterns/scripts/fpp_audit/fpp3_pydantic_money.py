"""FPP3xx: Pydantic 2 and money."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from .framework import is_mapped, kwarg, rule, words
from .module import Module
from .names import (
    ACTING_USER_FIELDS,
    LIBRARY_TYPES,
    MONEY_WORDS,
    NOT_MONEY_WORDS,
    V1_CONFIG_KEYS,
)


@rule(
    "FPP301",
    "pydantic-v1-validator",
    (
        "`@validator`/`@root_validator` are Pydantic 1 (deprecated; `@root_validator` raises "
        "without skip_on_failure)"
    ),
    "`@field_validator('x')` / `@model_validator(mode='after')` with `@classmethod`",
)
def pydantic_v1_validator(m: Module) -> Iterable[ast.AST]:
    old = {
        "pydantic.validator",
        "pydantic.root_validator",
        "pydantic.class_validators.validator",
        "pydantic.class_validators.root_validator",
    }
    for func in m.functions:
        for deco in func.decorator_list:
            if m.qualname(deco.func if isinstance(deco, ast.Call) else deco) in old:
                yield deco


@rule(
    "FPP302",
    "pydantic-class-config",
    "`class Config` in a model is Pydantic 1 (`orm_mode` is ignored: no from_attributes)",
    "`model_config = ConfigDict(from_attributes=True, ...)`",
)
def pydantic_class_config(m: Module) -> Iterable[ast.AST]:
    for cls in m.classes:
        for inner in cls.body:
            if isinstance(inner, ast.ClassDef) and inner.name == "Config":
                keys = {
                    t.id
                    for s in inner.body
                    if isinstance(s, ast.Assign)
                    for t in s.targets
                    if isinstance(t, ast.Name)
                }
                keys |= {
                    s.target.id
                    for s in inner.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                }
                if cls.name in m.models or keys & V1_CONFIG_KEYS:
                    yield inner


@rule(
    "FPP303",
    "pydantic-v1-method",
    (
        "Pydantic 1 method (`.dict()`, `.json()`, `parse_obj`, `from_orm`, ...): deprecated, "
        "`from_orm` fails without from_attributes"
    ),
    (
        "`model_dump()`, `model_dump_json()`, `model_validate()`, `model_validate_json()`, "
        "`model_copy()`"
    ),
)
def pydantic_v1_method(m: Module) -> Iterable[ast.AST]:
    classmethods = {
        "parse_obj",
        "parse_raw",
        "parse_file",
        "from_orm",
        "schema_json",
        "update_forward_refs",
    }
    instance = {"dict", "json", "copy"}
    pydantic_kwargs = {"exclude_unset", "exclude_none", "exclude_defaults", "by_alias"}
    for call in m.calls:
        func = call.func
        if not isinstance(func, ast.Attribute):
            continue
        receiver = func.value
        if (
            func.attr in classmethods
            and isinstance(receiver, ast.Name)
            and receiver.id[:1].isupper()
        ):
            yield call
        elif func.attr in instance and isinstance(receiver, ast.Name):
            # dict.copy() takes no `update=`; the exclude_* keywords are Pydantic's.
            pydantic_only = kwarg(call, "update") if func.attr == "copy" else None
            if func.attr != "copy" and {kw.arg for kw in call.keywords} & pydantic_kwargs:
                pydantic_only = call
            if pydantic_only is not None or model_instance(m, call, receiver.id):
                yield call


def model_instance(m: Module, call: ast.Call, name: str) -> bool:
    """Is `name` a model here: a parameter annotated with a model class, or a route's body."""
    func = m.scope_of(call)
    if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    for arg, default in m.params(func):
        if arg.arg != name or m.is_dependency_param(arg, default):
            continue
        names = m.annotation_names(arg.annotation)
        if names & m.models:
            return True
        if m.route_methods(func) and isinstance(arg.annotation, ast.Name):
            # A route's body parameter: a class of the project, not `request: Request`.
            origin = m.imports.get(arg.annotation.id, "").split(".")[0]
            return arg.annotation.id[:1].isupper() and origin not in LIBRARY_TYPES
    return False


@rule(
    "FPP304",
    "pydantic-missing-name",
    (
        "name that Pydantic 2 does not export (`Optional`, `List`, ... come from typing; "
        "`BaseSettings` moved)"
    ),
    "`from typing import ...` (or `X | None`); `from pydantic_settings import BaseSettings`",
)
def pydantic_missing_name(m: Module) -> Iterable[ast.AST]:
    missing = {"Optional", "List", "Dict", "Union", "Any", "Tuple", "Set", "BaseSettings"}
    for node in m.nodes:
        if isinstance(node, ast.ImportFrom) and node.module == "pydantic":
            yield from (a for a in node.names if a.name in missing)


@rule(
    "FPP305",
    "deprecated-field-argument",
    (
        "`example=`/`regex=`/`min_items=` are Pydantic 1 / old FastAPI arguments (deprecated or "
        "removed)"
    ),
    "`examples=[...]`, `pattern=`, `min_length=`/`max_length=`",
)
def deprecated_field_argument(m: Module) -> Iterable[ast.AST]:
    owners = ("pydantic.", "fastapi.", "sqlmodel.")
    fields = {"Field", "Query", "Path", "Body", "Header", "Cookie", "Form", "File"}
    for call in m.calls:
        q = m.qualname(call.func) or ""
        if q.startswith(owners) and q.rsplit(".", 1)[-1] in fields:
            yield from (
                kw
                for kw in call.keywords
                if kw.arg in {"example", "regex", "min_items", "max_items", "const"}
                # `regex=regex`: a wrapper passing its caller's argument through
                and not (isinstance(kw.value, ast.Name) and kw.value.id == kw.arg)
            )


@rule(
    "FPP306",
    "float-money",
    "money annotated as `float` (0.1 + 0.2 != 0.3; rounding drifts)",
    "`Decimal` (with max_digits/decimal_places) or integer minor units (cents)",
)
def float_money(m: Module) -> Iterable[ast.AST]:
    def money_float(name: str, ann: ast.AST | None) -> bool:
        w = words(name)
        return (
            bool(w & MONEY_WORDS)
            and not w & NOT_MONEY_WORDS
            and "float" in m.annotation_names(ann)
            and m.is_builtin("float")
        )

    for cls in m.classes:
        # A bare `total` is money in a model (`Order.total`), not in `ClientTimeout.total`.
        money_class = cls.name in m.models or bool(words(cls.name) & MONEY_WORDS)
        for stmt in cls.body:
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and money_float(stmt.target.id, stmt.annotation)
                and (money_class or words(stmt.target.id) - {"total"} or is_mapped(stmt))
            ):
                yield stmt.annotation
    for func in m.functions:
        # Parameters only where money is the subject: a route, or `process_payment(amount=...)`,
        # not `incrbyfloat(name, amount: float)`.
        if m.route_methods(func) or words(func.name) & MONEY_WORDS:
            yield from (
                a.annotation
                for a, _ in m.params(func)
                if a.annotation and money_float(a.arg, a.annotation)
            )


@rule(
    "FPP307",
    "patch-without-exclude-unset",
    (
        "`model_dump()`/`.dict()` of the body in a PATCH handler without `exclude_unset=True`: "
        "omitted fields overwrite data with defaults"
    ),
    "`body.model_dump(exclude_unset=True)`",
)
def patch_without_exclude_unset(m: Module) -> Iterable[ast.AST]:
    for func in m.functions:
        if "patch" not in m.route_methods(func):
            continue
        body_params = {a.arg for a, d in m.params(func) if not m.is_dependency_param(a, d)}
        for node in m.walk_own(func):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"model_dump", "dict"}
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in body_params
            ):
                unset = kwarg(node, "exclude_unset")
                if unset is None or (isinstance(unset, ast.Constant) and not unset.value):
                    yield node


@rule(
    "FPP308",
    "user-id-in-payment-body",
    "payment/transfer request model takes `user_id` from the body: any caller can act as anyone",
    "take the acting user from the authentication dependency, never from the body",
)
def user_id_in_payment_body(m: Module) -> Iterable[ast.AST]:
    money_models = {
        "payment",
        "transfer",
        "charge",
        "withdrawal",
        "withdraw",
        "deposit",
        "payout",
        "refund",
    }
    for cls in m.classes:
        if (
            cls.name in m.models
            and words(cls.name) & money_models
            and not words(cls.name) & {"response", "out", "read", "public"}
        ):
            yield from (
                stmt
                for stmt in cls.body
                if isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and stmt.target.id in ACTING_USER_FIELDS
            )
