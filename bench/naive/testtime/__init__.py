"""Claim 2: one small API and 50 API tests, run with the seed's fixtures (seed/) and with ours
(ours/). Not part of the project's suite (testpaths = tests); run by bench.scenarios.testtime
with its own ini file:
`pytest -c bench/naive/testtime/pytest-seed.ini bench/naive/testtime/seed`."""
