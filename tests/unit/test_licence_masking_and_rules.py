from datetime import date

import pytest

from catalog.codes import make_uscc
from core.errors import Invalid
from licenses.issuing import prepare_licence
from licenses.masking import mask_code, mask_name
from licenses.models import LicenceType
from licenses.types import check_holder_code, validate_face, validate_face_schema

ID_NUMBER = "11010519491231002X"  # the GB 11643 example
USCC = "91120222MA06DG3067"  # a real, valid code (standards §4)


def test_id_number_is_masked_like_the_issue_example():
    assert mask_code("32120319800101123X") == "321203********123X"


def test_uscc_keeps_area_and_last_four():
    assert mask_code(USCC) == "911202********3067"


@pytest.mark.parametrize(
    ("name", "kind", "masked"),
    [
        ("张三", "111", "张*"),
        ("欧阳娜娜", "111", "欧***"),
        ("李", "111", "*"),
        ("泰州市高港区港城食品有限公司", "001", "泰州********有限公司"),
    ],
)
def test_names_are_masked(name, kind, masked):
    assert mask_name(name, kind) == masked


def test_masking_empty_values_gives_empty_text():
    assert mask_code("") == ""
    assert mask_name(None) == ""


def person_type(**kw):
    base = {
        "code": "11100000000013338W032",
        "name": "资格证书",
        "holder_code_type": "111",
        "validity_years": 2,
        "face_schema": validate_face_schema(
            [
                {"key": "gender", "label": "性别", "type": "enum", "choices": ["男", "女"], "required": True},
                {"key": "score", "label": "成绩", "type": "integer"},
                {"key": "exam_day", "label": "考试日期", "type": "date"},
            ]
        ),
        "is_active": True,
    }
    base.update(kw)
    return LicenceType(**base)


def test_unknown_face_fields_are_rejected_by_name():
    with pytest.raises(Invalid) as exc:
        validate_face(person_type(), {"gender": "男", "colour": "red"})
    assert "face.colour" in exc.value.details


def test_face_values_are_typed_and_required_fields_checked():
    with pytest.raises(Invalid) as exc:
        validate_face(person_type(), {"score": "ten", "exam_day": "2024-13-01"})
    assert set(exc.value.details) == {"face.gender", "face.score", "face.exam_day"}
    ok = validate_face(person_type(), {"gender": "女", "score": "95", "exam_day": "2024-05-01"})
    assert ok == {"gender": "女", "score": 95, "exam_day": "2024-05-01"}


@pytest.mark.parametrize("score", ["²", "١٢", "9" * 5000, "1" * 16, 10**30, -(10**16)])
def test_integer_face_field_refuses_non_ascii_digits_and_unbounded_numbers(score):
    # "²" passed str.isdigit() and int() raised (a 500 on issue); 10**30 was signed and synced as is.
    with pytest.raises(Invalid) as exc:
        validate_face(person_type(), {"gender": "男", "score": score})
    assert set(exc.value.details) == {"face.score"}
    assert validate_face(person_type(), {"gender": "男", "score": "9" * 15})["score"] == 10**15 - 1


def test_enum_value_outside_the_choices_is_rejected():
    with pytest.raises(Invalid):
        validate_face(person_type(), {"gender": "未知"})


@pytest.mark.parametrize(
    "schema",
    [
        [{"key": "Bad Key", "label": "x"}],
        [{"key": "a", "label": ""}],
        [{"key": "a", "label": "x", "type": "colour"}],
        [{"key": "a", "label": "x", "type": "enum"}],
        [{"key": "a", "label": "x"}, {"key": "a", "label": "y"}],
        [{"key": "a", "label": "x", "extra": 1}],
        {"key": "a"},
    ],
)
def test_bad_face_schemas_are_refused(schema):
    with pytest.raises(Invalid):
        validate_face_schema(schema)


def test_holder_code_of_the_wrong_kind_for_the_type_is_explained():
    assert "应填写公民身份号码" in check_holder_code("111", USCC)
    assert "应填写统一社会信用代码" in check_holder_code("001", ID_NUMBER)


def test_wrong_check_digits_are_rejected_for_both_kinds():
    assert "校验位" in check_holder_code("111", ID_NUMBER[:-1] + "1")
    bad_uscc = USCC[:-1] + ("8" if USCC[-1] != "8" else "9")
    assert check_holder_code("001", bad_uscc)
    assert check_holder_code("001", make_uscc("91321203", "MA123456")) is None
    assert check_holder_code("111", ID_NUMBER) is None


def issue_data(**kw):
    data = {"holder_name": "张三", "holder_code": ID_NUMBER, "face": {"gender": "男"}}
    data.update(kw)
    return data


def test_validity_ending_before_it_starts_is_rejected():
    with pytest.raises(Invalid) as exc:
        prepare_licence(
            person_type(),
            issue_data(valid_from="2024-05-01", valid_to="2024-04-30"),
            default_area="321203",
            on=date(2024, 6, 1),
        )
    assert "valid_to" in exc.value.details


def test_validity_defaults_from_the_type_and_is_capped_by_it():
    inp = prepare_licence(
        person_type(), issue_data(valid_from="2024-03-01"), default_area="321203", on=date(2024, 6, 1)
    )
    assert inp.valid_to == date(2026, 2, 28)
    with pytest.raises(Invalid) as exc:
        prepare_licence(
            person_type(),
            issue_data(valid_from="2024-03-01", valid_to="2030-01-01"),
            default_area="321203",
            on=date(2024, 6, 1),
        )
    assert "最长 2 年" in exc.value.details["valid_to"][0]


def test_all_field_errors_are_reported_at_once():
    with pytest.raises(Invalid) as exc:
        prepare_licence(
            person_type(),
            {
                "holder_name": "",
                "holder_code": "123",
                "area_code": "32",
                "face": {},
                "issue_date": "2999-01-01",
                "colour": 1,
            },
            default_area="321203",
            on=date(2024, 6, 1),
        )
    assert {"holder_name", "holder_code", "area_code", "face.gender", "issue_date", "colour"} <= set(
        exc.value.details
    )


def test_holder_code_type_must_match_the_type():
    with pytest.raises(Invalid) as exc:
        prepare_licence(person_type(), issue_data(holder_code_type="001"), default_area="321203")
    assert "holder_code_type" in exc.value.details
