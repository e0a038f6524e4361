#!/usr/bin/env python3
"""Find the common FastAPI production mistakes in Python source, with `ast` only.

    python audit.py app/ tests/         # path:line:col: FPP### message (fix: ...)
    python audit.py --format json src/  # the same findings for machines
    python audit.py --list-rules        # every rule, its fix, and the ruff rule that overlaps

Standard library only (Python 3.11+; run it with a Python at least as new as the syntax of the
code it reads): copy the scripts/ folder (audit.py and the fpp_audit/ package beside it) into any
project and run audit.py. Exit status:
0 nothing found, 1 findings, 2 usage error or a file that could not be read or parsed (2 wins).
`# noqa: FPP201` (codes may be mixed with other linters' codes) on a finding's line silences that
rule there. A bare `# noqa` does NOT silence the audit: it is usually written for another linter,
and a deliberate mistake should say which one it is. In ruff, set `lint.external = ["FPP"]`.

Where ruff's flake8-async rules already report a case, `--list-rules` names them (ASYNC210, ...):
ignore ours or theirs. Ruff's FastAPI rules (FAST001-003) have no twin here.
"""

import sys
from pathlib import Path

# The rules live in fpp_audit/ beside this file; `python -I` leaves this folder off sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fpp_audit import main

if __name__ == "__main__":
    sys.exit(main())
