"""Two common testing mistakes as tiny pytest suites, run by bench.scenarios.test_mistakes in
subprocesses with a timeout (never collected by the project's suite: testpaths = tests)."""
