"""Property tests of cursors: they round-trip, and junk is only ever an InvalidInput."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import InvalidInput
from app.core.pagination import decode_cursor, encode_cursor

fast = settings(max_examples=100, deadline=None)


@pytest.fixture(autouse=True)
def _empty_tables() -> None:
    """Pure functions: no database to start, nor to empty after each test."""


keys = st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=20), max_size=5)


@fast
@given(key=keys)
def test_a_cursor_round_trips(key):
    assert decode_cursor(encode_cursor(key)) == key


@fast
@given(key=st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
def test_a_cursor_is_url_safe_and_unpadded(key):
    cursor = encode_cursor(key)

    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def decode_or_error(cursor: str) -> dict[str, object] | InvalidInput:
    """decode_cursor's result, or the InvalidInput it raised; any other exception escapes."""
    try:
        return decode_cursor(cursor)
    except InvalidInput as exc:
        return exc


def is_a_key_or_invalid_cursor(result: dict[str, object] | InvalidInput) -> bool:
    if isinstance(result, InvalidInput):
        return (result.status_code, result.code) == (422, "invalid_cursor")
    return isinstance(result, dict)


@fast
@given(text=st.text())
def test_any_text_decodes_or_is_invalid_input(text):
    assert is_a_key_or_invalid_cursor(decode_or_error(text))


@fast
@given(raw=st.binary(max_size=300))
def test_any_base64_payload_decodes_or_is_invalid_input(raw):
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")

    assert is_a_key_or_invalid_cursor(decode_or_error(cursor))


@fast
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3),
        max_leaves=10,
    )
)
def test_json_that_is_not_an_object_is_invalid_input(value):
    cursor = base64.urlsafe_b64encode(json.dumps(value).encode()).decode()

    with pytest.raises(InvalidInput):
        decode_cursor(cursor)


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deeply_nested_json_is_invalid_input_not_a_recursion_error(opener):
    cursor = base64.urlsafe_b64encode((opener * 100_000).encode()).decode()

    with pytest.raises(InvalidInput):
        decode_cursor(cursor)
