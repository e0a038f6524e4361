"""Every module that defines job kinds, imported once so each kind is registered.

The web app and `python -m app worker` both import this module: a worker that did not import a
kind could not run it. One import line per module.
"""

import app.exports.jobs
import app.imports.jobs
import app.notifications.jobs
import app.tools.router  # noqa: F401  (long-running tools)
