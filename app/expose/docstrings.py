"""A function's docstring as its endpoint's documentation.

The parsing is docstring-parser's (Google `Args:`/`Returns:`/`Raises:` sections, reST
`:param x:` fields, numpydoc); what is ours is where each part goes: the first paragraph is the
operation's summary, the other prose its description, a parameter's text the description of its
JSON field, and the `Raises:` entries document the error responses.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import docstring_parser


@dataclasses.dataclass(frozen=True)
class Docstring:
    summary: str
    description: str
    params: dict[str, str]
    returns: str
    raises: dict[str, str]  # exception class name -> when it is raised


def parse_docstring(func: Callable[..., Any]) -> Docstring:
    """Summary (first paragraph, on one line), description (the other prose), and the
    descriptions of the parameters, the return value and the exceptions."""
    text = inspect.getdoc(func) or ""
    try:
        parsed = docstring_parser.parse(text)
    except docstring_parser.ParseError:
        # A docstring no style reads is still documentation: all of it is prose.
        summary, _, description = text.partition("\n\n")
        return Docstring(" ".join(summary.split()), description.strip(), {}, "", {})
    # docstring-parser's short description is the first line only: a summary sentence that
    # wraps continues in its long description, up to the first blank line.
    short, long = parsed.short_description or "", parsed.long_description or ""
    joined = f"{short}\n\n{long}" if parsed.blank_after_short_description else f"{short}\n{long}"
    summary, _, description = joined.strip().partition("\n\n")
    return Docstring(
        summary=_one_line(summary),
        description=description.strip(),
        params={p.arg_name: _one_line(p.description) for p in parsed.params},
        returns=_one_line(parsed.returns.description if parsed.returns else None),
        raises={r.type_name: _one_line(r.description) for r in parsed.raises if r.type_name},
    )


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())
