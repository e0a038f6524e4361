"""A function's signature as its endpoint's request and response models.

Each parameter is either injected (the caller, or a type the app provides: see injection.py)
or a field of the request body, built by Pydantic from the type hint, the default and any
`Annotated[..., Field(...)]` constraints, with its description from the docstring. Unknown
fields are a 422. The response is `{"result": <return value>}`, validated against the return
annotation. A type Pydantic cannot validate and describe is refused here, at definition time,
with the function and the parameter named.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PydanticDeprecationWarning,
    TypeAdapter,
    create_model,
    model_validator,
)
from pydantic.errors import PydanticUserError
from pydantic.fields import FieldInfo
from pydantic.json_schema import PydanticJsonSchemaWarning

from app.expose.docstrings import Docstring
from app.expose.errors import ExposeError
from app.expose.injection import Caller, Injectable

# What Pydantic raises for a type it cannot validate or describe.
_SCHEMA_ERRORS = (PydanticUserError, PydanticJsonSchemaWarning, TypeError, ValueError)


@dataclasses.dataclass(frozen=True)
class BodyParam:
    name: str  # the function's parameter name, and the JSON field name
    field: str  # the model's attribute (differs only when the name would shadow BaseModel's)


@dataclasses.dataclass(frozen=True)
class Signature:
    """Where each parameter's value comes from, and the models of the request and response."""

    is_async: bool
    body_params: list[BodyParam]
    injected: dict[str, Injectable]
    caller_params: list[str]
    order: list[tuple[str, bool]]  # every parameter in order: (name, positional-only)
    arguments_model: type[BaseModel]
    input_schema: dict[str, Any]
    result_model: type[BaseModel]
    result_adapter: TypeAdapter[Any]
    output_schema: dict[str, Any]

    @property
    def body_required(self) -> bool:
        return any(f.is_required() for f in self.arguments_model.model_fields.values())

    def bind(
        self, arguments: BaseModel, provided: Mapping[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        """The positional and keyword arguments of a call: the validated body plus what was
        injected."""
        values = {p.name: getattr(arguments, p.field) for p in self.body_params}
        values.update(provided)
        positional = [values[name] for name, positional_only in self.order if positional_only]
        keyword = {
            name: values[name] for name, positional_only in self.order if not positional_only
        }
        return positional, keyword


@dataclasses.dataclass(frozen=True)
class Reading:
    """What a signature is read with: who the caller is, what else is injected, and whether
    the call runs as a job (which limits what can be injected)."""

    qualname: str
    tool_name: str
    docs: Docstring
    caller: Caller | None
    injectables: Sequence[Injectable]
    long_running: bool
    check: Callable[..., None] | None = None


def read_signature(func: Callable[..., Any], reading: Reading) -> Signature:
    """The signature of `func` as request and response models; ExposeError naming the function
    and the parameter when one cannot be read from JSON or injected."""
    qualname = reading.qualname
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise ExposeError(f"{qualname}: its type hints cannot be resolved: {exc}") from exc
    is_async = inspect.iscoroutinefunction(inspect.unwrap(func))
    parameters = list(inspect.signature(func).parameters.values())
    fields: dict[str, Any] = {}
    body_params: list[BodyParam] = []
    injected: dict[str, Injectable] = {}
    caller_params: list[str] = []
    for param in parameters:
        where = f"{qualname}, parameter {param.name!r}"
        annotation = _annotation(param, hints, where)
        target = _optional_inner(_base_type(annotation))
        if reading.caller is not None and _is_type(target, reading.caller.type):
            caller_params.append(param.name)
        elif injectable := _injectable(target, reading, is_async, where):
            injected[param.name] = injectable
        else:
            field_name = _field_name(param.name, len(body_params))
            fields[field_name] = _body_field(param, field_name, annotation, reading.docs, where)
            body_params.append(BodyParam(param.name, field_name))
    if "return" not in hints:
        raise ExposeError(f"{qualname}: has no return annotation, so its result has no schema")
    returns = hints["return"]
    if problem := _schema_problem(returns):
        raise ExposeError(f"{qualname}: return type {returns!r} cannot be sent as JSON: {problem}")
    validators = {}
    if reading.check is not None:
        validators["check_arguments"] = _check_validator(reading.check, body_params, qualname)
    return Signature(
        is_async=is_async,
        body_params=body_params,
        injected=injected,
        caller_params=caller_params,
        order=[(p.name, p.kind is inspect.Parameter.POSITIONAL_ONLY) for p in parameters],
        **_models(reading, fields, validators, returns),
    )


def _annotation(param: inspect.Parameter, hints: Mapping[str, Any], where: str) -> Any:
    if param.kind is inspect.Parameter.VAR_POSITIONAL:
        raise ExposeError(f"{where}: *args cannot be exposed (a JSON body has names)")
    if param.kind is inspect.Parameter.VAR_KEYWORD:
        raise ExposeError(f"{where}: **kwargs cannot be exposed (list the parameters)")
    if param.name not in hints:
        raise ExposeError(f"{where}: has no type hint, so it cannot be validated")
    return hints[param.name]


def _injectable(target: Any, reading: Reading, is_async: bool, where: str) -> Injectable | None:
    """The injectable a parameter's type asks for, if any, once it is known to fit."""
    injectable = next((i for i in reading.injectables if _is_type(target, i.type)), None)
    if injectable is None:
        return None
    label = injectable.label or injectable.type.__name__
    if injectable.async_only and not is_async:
        raise ExposeError(f"{where}: a {label} can only be given to an async def function")
    if reading.long_running and injectable.in_job is None:
        raise ExposeError(f"{where}: a long-running tool cannot take {label}")
    return injectable


def _field_name(name: str, index: int) -> str:
    # A parameter called `_x` or `model_dump` keeps its JSON name through an alias.
    if name.startswith("_") or hasattr(BaseModel, name):
        return f"arg_{name.strip('_')}_{index}"
    return name


def _body_field(
    param: inspect.Parameter, field_name: str, annotation: Any, docs: Docstring, where: str
) -> tuple[Any, FieldInfo]:
    if problem := _schema_problem(annotation):
        raise ExposeError(f"{where}: type {annotation!r} cannot be read from JSON: {problem}")
    kwargs: dict[str, Any] = {} if field_name == param.name else {"alias": param.name}
    # A description given in Annotated[..., Field(description=...)] wins over the docstring.
    described = any(
        isinstance(meta, FieldInfo) and meta.description for meta in typing.get_args(annotation)[1:]
    )
    if not described and (description := docs.params.get(param.name)):
        kwargs["description"] = description
    if param.default is not inspect.Parameter.empty:
        kwargs["default"] = param.default
    return annotation, Field(**kwargs)


def _models(
    reading: Reading, fields: dict[str, Any], validators: dict[str, Any], returns: Any
) -> dict[str, Any]:
    """The arguments model (the request body), the result model (`{"result": ...}`) and their
    JSON schemas."""
    tool_name = reading.tool_name
    model_name = _pascal(tool_name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PydanticJsonSchemaWarning)
            arguments_model = create_model(
                f"{model_name}Arguments",
                __config__=ConfigDict(extra="forbid", title=f"{model_name}Arguments"),
                __doc__=f"The arguments of {tool_name}.",
                __validators__=validators,
                **fields,
            )
            result_model = create_model(
                f"{model_name}Result",
                __config__=ConfigDict(extra="forbid"),
                result=(
                    returns,
                    Field(description=reading.docs.returns or f"What {tool_name} returns."),
                ),
            )
            result_adapter: TypeAdapter[Any] = TypeAdapter(returns)
            return {
                "arguments_model": arguments_model,
                "input_schema": arguments_model.model_json_schema(by_alias=True),
                "result_model": result_model,
                "result_adapter": result_adapter,
                "output_schema": result_adapter.json_schema(mode="serialization"),
            }
    except _SCHEMA_ERRORS as exc:
        raise ExposeError(f"{reading.qualname}: cannot build its request model: {exc}") from exc


def _check_validator(
    check: Callable[..., None], body_params: list[BodyParam], qualname: str
) -> Any:
    """`check(**some_arguments)` as a validator of the whole arguments model: a ValueError it
    raises is a validation error like any other (a 422 before anything runs)."""
    fields = {p.name: p.field for p in body_params}
    names = list(inspect.signature(check).parameters)
    if unknown := [n for n in names if n not in fields]:
        raise ExposeError(
            f"{qualname}: check {getattr(check, '__name__', check)!r} takes "
            f"{', '.join(unknown)}, which the request body does not carry"
        )
    if inspect.iscoroutinefunction(inspect.unwrap(check)):
        raise ExposeError(f"{qualname}: check must be a plain def (it runs during validation)")

    def check_arguments(arguments: BaseModel) -> BaseModel:
        check(**{name: getattr(arguments, fields[name]) for name in names})
        return arguments

    return model_validator(mode="after")(check_arguments)


def _schema_problem(annotation: Any) -> str | None:
    """Why pydantic cannot validate and describe this type, or None when it can."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PydanticJsonSchemaWarning)
            warnings.simplefilter("ignore", PydanticDeprecationWarning)
            adapter: TypeAdapter[Any] = TypeAdapter(annotation)
            adapter.json_schema(mode="validation")
            adapter.json_schema(mode="serialization")
    except _SCHEMA_ERRORS as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def _base_type(annotation: Any) -> Any:
    """`Annotated[T, ...]` -> T."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _optional_inner(annotation: Any) -> Any:
    """`T | None` -> T (an optional dependency is still that dependency)."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_type(annotation: Any, expected: type[Any]) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, expected)


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)
