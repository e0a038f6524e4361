"""Plain Python functions as validated, documented, authorised endpoints: `Exposer.expose`.

Read in this order: `routes` (the Exposer: one route per function, and the list of tools),
`signatures` (a signature as request and response models), `docstrings` (the documentation),
`errors` (exceptions as problems), `injection` (what the app provides), `tool` (calling the
function), `long_running` (calls that run as jobs and answer 202).
"""

from app.expose.docstrings import Docstring, parse_docstring
from app.expose.errors import ErrorSpec, ExposeError
from app.expose.injection import DEFAULT_INJECTABLES, Caller, Injectable
from app.expose.routes import Exposer, ModuleTools, public_functions
from app.expose.tool import Tool

__all__ = [
    "DEFAULT_INJECTABLES",
    "Caller",
    "Docstring",
    "ErrorSpec",
    "ExposeError",
    "Exposer",
    "Injectable",
    "ModuleTools",
    "Tool",
    "parse_docstring",
    "public_functions",
]
