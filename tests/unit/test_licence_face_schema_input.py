"""The licence type admin's face-field schema (licenses/types.py): JSON values that Python's bool()
would turn into the opposite, and lists no page can show, are refused naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import Invalid
from licenses.types import _type_fields, validate_face_schema


def _problem(field: dict[str, Any]) -> str:
    with pytest.raises(Invalid) as refused:
        validate_face_schema([{"key": "grade", "label": "等级", **field}])
    return refused.value.details["face_schema.0"][0]


def test_required_given_as_the_string_false_is_refused_not_made_required() -> None:
    assert _problem({"required": "false"}) == "required 应为 true 或 false"
    assert (
        validate_face_schema([{"key": "grade", "label": "等级", "required": False}])[0]["required"] is False
    )


def test_an_enum_with_an_empty_blank_or_repeated_choice_is_refused() -> None:
    for choices in ([""], ["甲", "甲"], [" 甲"], ["选" * 101], [f"选{i}" for i in range(201)]):
        assert _problem({"type": "enum", "choices": choices}).startswith("choices 最多 200 项"), choices


def test_a_label_of_a_megabyte_a_boolean_max_length_and_a_thousand_fields_are_refused() -> None:
    assert _problem({"label": "长" * 1_000_000}) == "label（字段名称）最多 100 字"
    assert _problem({"max_length": True}) == "max_length 应为 1-5000 的整数"
    with pytest.raises(Invalid) as refused:
        validate_face_schema([{"key": f"f{i}", "label": "字段"} for i in range(1000)])
    assert refused.value.details == {"face_schema": ["最多 100 个字段"]}


def test_is_active_given_as_the_string_false_is_refused_not_taken_as_true() -> None:
    with pytest.raises(Invalid) as refused:
        _type_fields({"is_active": "false"}, partial=True)
    assert refused.value.details == {"is_active": ["应为 true 或 false"]}
    assert _type_fields({"is_active": False}, partial=True) == {"is_active": False}
