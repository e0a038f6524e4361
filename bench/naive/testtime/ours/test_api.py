"""The shared API tests, run with the fixtures of this folder's conftest."""

from bench.naive.testtime.api_tests import *  # noqa: F403
