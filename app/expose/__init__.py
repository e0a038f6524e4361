"""Plain Python functions as validated, documented, authorised endpoints: `Exposer.expose`.

Read in this order: `routes` (the Exposer: one route per function, and the list of tools),
`signatures` (a signature as request and response models), `docstrings` (the documentation),
`errors` (exceptions as problems), `injection` (what the app provides), `tool` (calling the
function), `long_running` (calls that run as jobs and answer 202).
"""

from app.expose.docstrings import Docstring, parse_docstring
from app.expose.errors import DEFAULT_ERRORS, ErrorSpec, ExposeError, ToolError
from app.expose.injection import DEFAULT_INJECTABLES, Caller, Injectable, get_http_client
from app.expose.long_running import DEFAULT_JOB_TIME_LIMIT
from app.expose.routes import (
    DEFAULT_THREADS_PER_TOOL,
    Exposer,
    ModuleTools,
    ToolInfo,
    ToolList,
    public_functions,
)
from app.expose.tool import Tool

__all__ = [
    "DEFAULT_ERRORS",
    "DEFAULT_INJECTABLES",
    "DEFAULT_JOB_TIME_LIMIT",
    "DEFAULT_THREADS_PER_TOOL",
    "Caller",
    "Docstring",
    "ErrorSpec",
    "ExposeError",
    "Exposer",
    "Injectable",
    "ModuleTools",
    "Tool",
    "ToolError",
    "ToolInfo",
    "ToolList",
    "get_http_client",
    "parse_docstring",
    "public_functions",
]
