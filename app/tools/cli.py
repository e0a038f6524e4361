"""`python -m app expose some.module`: every public function of a module, served.

The module is imported as it is (no decorator, no FastAPI in it), each public function it
defines becomes `POST /api/v1/tools/<module>/<function>` (listed by `GET /api/v1/tools/<module>`),
and the app around them is the production one: sign-in required, problems for errors, metrics,
request ids, the offline docs at /docs. A function that cannot be exposed (no type hints, say)
is skipped with the reason printed, unless it was asked for by name with `--name`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from fastapi import FastAPI

from app.core.settings import Settings
from app.expose.routes import ExposeError, Exposer, public_functions
from app.main import API_PREFIX, create_app
from app.tools.router import make_exposer

_PREFIX = re.compile(r"(/[A-Za-z0-9_-]+)+")


@dataclass
class ExposedModule:
    app: FastAPI
    exposer: Exposer
    prefix: str
    exposed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def default_prefix(module_name: str) -> str:
    return "/tools/" + module_name.rsplit(".", 1)[-1]


def expose_module_app(
    module_name: str,
    *,
    names: Sequence[str] = (),
    prefix: str | None = None,
    settings: Settings | None = None,
) -> ExposedModule:
    """The production app plus the module's functions. Raises ExposeError (a message for the
    person at the terminal) when the module has nothing that can be served, when a function
    named in `names` is missing or cannot be exposed, or when the prefix is not a path."""
    import importlib

    prefix = prefix or default_prefix(module_name)
    if not _PREFIX.fullmatch(prefix):
        raise ExposeError(f"--prefix {prefix!r} must look like /tools/stats")
    module = importlib.import_module(module_name)
    found = public_functions(module)
    kind_prefix = "expose." + module_name
    exposer = make_exposer(prefix=prefix, kind_prefix=kind_prefix)
    exposed: list[str] = []
    skipped: dict[str, str] = {}
    if names:
        missing = [n for n in names if n not in found]
        if missing:
            raise ExposeError(
                f"module {module_name} has no public function named {', '.join(missing)} "
                f"(it has: {', '.join(found) or 'none'})"
            )
        for name in names:
            exposer.expose(found[name])  # an ExposeError here names the function and why
        exposed = list(names)
    else:
        for name, function in found.items():
            try:
                exposer.expose(function)
            except ExposeError as exc:
                skipped[name] = str(exc)
            else:
                exposed.append(name)
    if not exposed:
        reasons = "".join(f"\n  {reason}" for reason in skipped.values())
        raise ExposeError(f"module {module_name} has no function that can be exposed{reasons}")
    app = create_app(settings)
    app.include_router(exposer.router, prefix=API_PREFIX)
    return ExposedModule(app, exposer, prefix, exposed, skipped)
