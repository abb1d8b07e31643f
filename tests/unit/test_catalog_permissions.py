"""Who may edit, review, reopen, claim and view: catalog.permissions as a table (no database)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from catalog.permissions import (
    can_claim_for,
    can_edit_entry,
    can_reopen_entry,
    can_review_entry,
    can_view_entry,
    division_scope_prefix,
)
from core.auth import ANONYMOUS, Principal, Role

TOWN, VILLAGE, OTHER_VILLAGE, OTHER_TOWN = "321203001000", "321203001001", "321203002001", "321203002000"
DISTRICT = "321203000000"

ADMIN = Principal(1, "管理员", Role.ADMIN)
EDITOR_7 = Principal(2, "编辑", Role.DEPT_EDITOR, department_id=7)
REVIEWER_7 = Principal(3, "审核", Role.DEPT_REVIEWER, department_id=7)
EDITOR_8 = Principal(4, "他部门编辑", Role.DEPT_EDITOR, department_id=8)
TOWN_OP = Principal(5, "街道经办", Role.DIVISION_OPERATOR, division_code=TOWN)
VILLAGE_OP = Principal(6, "社区经办", Role.DIVISION_OPERATOR, division_code=VILLAGE)
DISTRICT_OP = Principal(7, "区经办", Role.DIVISION_OPERATOR, division_code=DISTRICT)


def entry(
    department_id: int = 7, division_code: str = DISTRICT, status: str = "draft", applicable: bool = True
):
    return SimpleNamespace(
        department_id=department_id, division_code=division_code, status=status, applicable=applicable
    )


@pytest.mark.parametrize(
    ("who", "target", "edit", "review"),
    [
        (ADMIN, entry(), True, True),
        (EDITOR_7, entry(), True, False),
        (REVIEWER_7, entry(), False, True),
        (EDITOR_8, entry(), False, False),
        (ANONYMOUS, entry(), False, False),
        (TOWN_OP, entry(9, TOWN), True, True),
        (TOWN_OP, entry(9, VILLAGE), True, True),
        (TOWN_OP, entry(9, OTHER_VILLAGE), False, False),
        (TOWN_OP, entry(9, DISTRICT), False, False),
        (VILLAGE_OP, entry(9, VILLAGE), True, False),
        (VILLAGE_OP, entry(9, TOWN), False, False),
        (VILLAGE_OP, entry(9, OTHER_VILLAGE), False, False),
        (DISTRICT_OP, entry(9, VILLAGE), False, False),
        (DISTRICT_OP, entry(9, DISTRICT), False, False),
    ],
)
def test_edit_and_review_rights(who, target, edit, review):
    assert can_edit_entry(who, target) is edit
    assert can_review_entry(who, target) is review
    assert can_reopen_entry(who, target) is (edit or review)


@pytest.mark.parametrize(
    ("who", "department", "allowed"),
    [
        (ADMIN, SimpleNamespace(id=7, division_code=DISTRICT), True),
        (EDITOR_7, SimpleNamespace(id=7, division_code=DISTRICT), True),
        (EDITOR_7, SimpleNamespace(id=8, division_code=DISTRICT), False),
        (REVIEWER_7, SimpleNamespace(id=7, division_code=DISTRICT), False),
        (TOWN_OP, SimpleNamespace(id=9, division_code=VILLAGE), True),
        (TOWN_OP, SimpleNamespace(id=9, division_code=OTHER_TOWN), False),
        (VILLAGE_OP, SimpleNamespace(id=9, division_code=TOWN), False),
        (ANONYMOUS, SimpleNamespace(id=7, division_code=DISTRICT), False),
    ],
)
def test_claim_rights(who, department, allowed):
    assert can_claim_for(who, department) is allowed


def test_public_sees_only_published_applicable_entries():
    assert can_view_entry(ANONYMOUS, entry(status="published"))
    assert not can_view_entry(ANONYMOUS, entry(status="draft"))
    assert not can_view_entry(ANONYMOUS, entry(status="retired"))
    assert not can_view_entry(ANONYMOUS, entry(status="published", applicable=False))
    assert can_view_entry(EDITOR_7, entry(status="draft"))
    assert not can_view_entry(EDITOR_8, entry(status="draft"))


@pytest.mark.parametrize(
    ("code", "prefix"),
    [(TOWN, "321203001"), (VILLAGE, VILLAGE), (DISTRICT, None), (None, None), ("123", None)],
)
def test_division_scope_prefix(code, prefix):
    assert division_scope_prefix(code) == prefix
