"""`python -m app expose some.module`: every public function of a module, served.

The module is imported as it is (no decorator, no FastAPI in it), each public function it
defines becomes `POST /api/v1/tools/<module>/<function>` (listed by `GET /api/v1/tools/<module>`),
behind the same sign-in as the app's own tools. A function that cannot be exposed (no type
hints, say) is skipped with the reason printed, unless it was asked for by name with `--name`.
The command includes `exposer.router` in the production app (app/__main__.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.expose import ExposeError, Exposer
from app.tools.router import make_exposer

_PREFIX = re.compile(r"(/[A-Za-z0-9_-]+)+")


@dataclass(frozen=True)
class ExposedModule:
    exposer: Exposer
    prefix: str
    exposed: list[str]
    skipped: dict[str, str]


def default_prefix(module_name: str) -> str:
    return "/tools/" + module_name.rsplit(".", 1)[-1]


def expose_module(
    module_name: str, *, names: Sequence[str] = (), prefix: str | None = None
) -> ExposedModule:
    """The module's functions on a router of their own. Raises ExposeError (a message for the
    person at the terminal) when the module has nothing that can be served, when a function
    named in `names` is missing or cannot be exposed, or when the prefix is not a path."""
    prefix = prefix or default_prefix(module_name)
    if not _PREFIX.fullmatch(prefix):
        raise ExposeError(f"--prefix {prefix!r} must look like /tools/stats")
    exposer = make_exposer(prefix=prefix, kind_prefix="expose." + module_name)
    served = exposer.expose_module(module_name, names=names)
    return ExposedModule(exposer, prefix, served.exposed, served.skipped)
