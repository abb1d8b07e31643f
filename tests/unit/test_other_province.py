"""Items borrowed from another province's catalogue are recognised by the province they name."""

from __future__ import annotations

import pytest

from catalog.divisions import other_province_named

JIANGSU_DISTRICT = "321203"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("申领《四川省老年人优待证》", "四川省"),
        ("《广西壮族自治区残疾人优惠证》补办", "广西壮族自治区"),
        ("申领《江苏省老年人优待证》", None),  # the district's own province
        ("江西路社区证明", None),  # a street name is not a province
        ("新设探矿权登记", None),
    ],
)
def test_other_province_named(name: str, expected: str | None) -> None:
    assert other_province_named(name, JIANGSU_DISTRICT) == expected


def test_the_same_item_is_local_in_its_own_province() -> None:
    assert other_province_named("申领《四川省老年人优待证》", "511602") is None
