"""Code the audit must flag, and close look-alikes it must leave alone, one group per rule.

A flagged case marks every line that must carry a finding of its rule with `# <- CODE`; the test
checks the lines found are exactly those. A quiet case must produce no finding of its rule.
The snippets are strings, so this repository's own audit and linters never read them as code.
One module per rule family, named like the audit's own (fpp1_lifecycle ... fpp5_http); here they
are joined in code order, so the test ids (`FPP101-0`, ...) and their order stay put.
"""

from tests.skill.audit_cases import (
    fpp1_lifecycle,
    fpp2_blocking,
    fpp3_pydantic_money,
    fpp4_tests,
    fpp5_http,
)

FAMILIES = (fpp1_lifecycle, fpp2_blocking, fpp3_pydantic_money, fpp4_tests, fpp5_http)

FLAGGED: dict[str, list[str]] = {
    code: cases for family in FAMILIES for code, cases in family.FLAGGED.items()
}
QUIET: dict[str, list[str]] = {
    code: cases for family in FAMILIES for code, cases in family.QUIET.items()
}
