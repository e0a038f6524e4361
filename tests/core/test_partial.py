"""Property tests of PATCH semantics: for any mix of absent / value / null per field."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import MISSING, BaseModel, ValidationError, model_validator

from app.core.errors import InvalidInput
from app.core.partial import PatchModel, apply_patch, changes

fast = settings(max_examples=100, deadline=None)


@pytest.fixture(autouse=True)
def _empty_tables() -> None:
    """Pure functions: no database to start, nor to empty after each test."""


class ItemPatch(PatchModel):
    title: str | MISSING = MISSING  # required column: null is refused
    count: int | MISSING | None = MISSING  # nullable column: null clears
    flag: bool | MISSING = MISSING


FIELDS = ("title", "count", "flag")
NULLABLE = {"count"}
ABSENT = object()

values = {"title": st.text(max_size=20), "count": st.integers(), "flag": st.booleans()}
# For each field: absent, a value, or null.
payloads = st.fixed_dictionaries(
    {}, optional={name: st.none() | strategy for name, strategy in values.items()}
)
stored = st.builds(
    SimpleNamespace, title=st.text(max_size=20), count=st.none() | st.integers(), flag=st.booleans()
)


def snapshot(target: SimpleNamespace) -> dict[str, object]:
    return dict(vars(target))


@fast
@given(payload=payloads, target=stored)
def test_sent_fields_are_set_and_absent_fields_are_left_alone(payload, target):
    if any(payload.get(name, ABSENT) is None for name in FIELDS if name not in NULLABLE):
        with pytest.raises(ValidationError):
            ItemPatch.model_validate(payload)
        return
    before = snapshot(target)

    changed = apply_patch(target, ItemPatch.model_validate(payload))

    for name in FIELDS:
        expected = payload[name] if name in payload else before[name]
        assert getattr(target, name) == expected
    assert changed == {k: v for k, v in payload.items() if before[k] != v}


@fast
@given(payload=payloads)
def test_changes_are_exactly_the_sent_keys_with_their_values(payload):
    if any(payload.get(name, ABSENT) is None for name in ("title", "flag")):
        return
    assert changes(ItemPatch.model_validate(payload)) == payload


@fast
@given(payload=payloads, exclude=st.sets(st.sampled_from(FIELDS)))
def test_changes_leaves_out_the_excluded_keys(payload, exclude):
    payload = {k: v for k, v in payload.items() if v is not None or k in NULLABLE}

    sent = changes(ItemPatch.model_validate(payload), exclude=exclude)

    assert sent == {k: v for k, v in payload.items() if k not in exclude}


@fast
@given(payload=payloads, target=stored, excluded=st.sampled_from(FIELDS))
def test_an_excluded_field_is_never_written(payload, target, excluded):
    payload = {k: v for k, v in payload.items() if v is not None or k in NULLABLE}
    before = getattr(target, excluded)

    apply_patch(target, ItemPatch.model_validate(payload), exclude={excluded})

    assert getattr(target, excluded) == before


@fast
@given(name=st.sampled_from(["title", "flag"]), payload=payloads)
def test_null_for_a_required_field_is_a_validation_error(name, payload):
    with pytest.raises(ValidationError) as info:
        ItemPatch.model_validate({**payload, name: None})

    assert any(error["loc"][0] == name for error in info.value.errors())


@fast
@given(payload=payloads, target=stored)
def test_null_for_a_nullable_field_clears_it(payload, target):
    payload = {k: v for k, v in payload.items() if v is not None} | {"count": None}

    apply_patch(target, ItemPatch.model_validate(payload))

    assert target.count is None


@fast
@given(
    payload=payloads,
    unknown=st.text(min_size=1, max_size=20).filter(lambda key: key not in FIELDS),
    value=st.none() | st.integers() | st.text(max_size=5),
)
def test_unknown_keys_are_rejected(payload, unknown, value):
    with pytest.raises(ValidationError) as info:
        ItemPatch.model_validate({**payload, unknown: value})

    assert any(
        error["type"] == "extra_forbidden" and error["loc"] == (unknown,)
        for error in info.value.errors()
    )


def test_an_empty_patch_changes_nothing():
    target = SimpleNamespace(title="t", count=3, flag=True)

    changed = apply_patch(target, ItemPatch.model_validate({}))

    assert changed == {}
    assert vars(target) == {"title": "t", "count": 3, "flag": True}


class Range(BaseModel):
    low: int
    high: int

    @model_validator(mode="after")
    def low_not_above_high(self) -> Range:
        if self.low > self.high:
            raise ValueError("low must not be above high")
        return self


class RangePatch(PatchModel):
    low: int | MISSING = MISSING
    high: int | MISSING = MISSING


range_patches = st.fixed_dictionaries(
    {}, optional={"low": st.integers(-50, 50), "high": st.integers(-50, 50)}
)


@fast
@given(low=st.integers(-50, 50), span=st.integers(0, 50), payload=range_patches)
def test_a_cross_field_rule_is_checked_on_the_merged_result(low, span, payload):
    target = SimpleNamespace(low=low, high=low + span)
    before = snapshot(target)
    merged = before | payload

    if merged["low"] <= merged["high"]:
        apply_patch(target, RangePatch.model_validate(payload), validate_with=Range)
        assert snapshot(target) == merged
        return
    with pytest.raises(InvalidInput) as info:
        apply_patch(target, RangePatch.model_validate(payload), validate_with=Range)
    assert info.value.status_code == 422
    assert info.value.code == "validation_error"
    assert info.value.errors
    assert all(set(error) == {"loc", "msg", "type"} for error in info.value.errors)
    assert snapshot(target) == before
