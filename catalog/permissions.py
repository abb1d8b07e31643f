"""Who may do what to catalogue objects. Pure functions of a Principal and the object.

Decisions (documented in docs/catalog.md):

- 区级管理员 (admin): everything, including departments and basic items.
- 部门编辑 (department editor): claims, declines, edits, submits and reopens the entries of its own
  department only.
- 部门审核 (department reviewer): approves (publishes), rejects, retires and reopens the entries of
  its own department only; it does not edit them (separation of duties).
- 镇村经办 (division operator): works on the entries whose division lies in its own division. A town
  operator covers the town's own bodies and the villages under that town; a village operator only
  that village. Operators claim, edit and submit. A town operator also approves, rejects, retires
  and reopens entries of its town and villages; a village operator cannot publish (its town or the
  district does).
- The public (anonymous) reads published, applicable entries only; staff also read entries in
  their own scope whatever their status.
"""

from __future__ import annotations

from typing import Any

from catalog.models import EntryStatus
from core.auth import Principal, Role


def division_scope_prefix(division_code: str | None) -> str | None:
    """The code prefix an operator of ``division_code`` covers: a town its 9 digits (itself and its
    villages), a village its exact code. County and higher codes give no scope: district-level entries
    belong to departments, which department roles cover."""
    if not division_code or len(division_code) != 12 or not division_code.isdigit():
        return None
    if division_code[6:] == "000000":
        return None
    if division_code[9:] == "000":
        return division_code[:9]
    return division_code


def in_division_scope(principal: Principal, division_code: str | None) -> bool:
    prefix = division_scope_prefix(principal.division_code)
    return bool(prefix and division_code and division_code.startswith(prefix))


def _is_town_operator(principal: Principal) -> bool:
    code = principal.division_code or ""
    is_town = len(code) == 12 and code[9:] == "000" and code[6:9] != "000"
    return principal.role == Role.DIVISION_OPERATOR and is_town


def _own_department(principal: Principal, entry: Any) -> bool:
    return principal.department_id is not None and principal.department_id == entry.department_id


def can_edit_entry(principal: Principal, entry: Any) -> bool:
    """Edit local elements, submit, set the 不见面 flag."""
    if principal.is_admin:
        return True
    if principal.role == Role.DEPT_EDITOR:
        return _own_department(principal, entry)
    if principal.role == Role.DIVISION_OPERATOR:
        return in_division_scope(principal, entry.division_code)
    return False


def can_review_entry(principal: Principal, entry: Any) -> bool:
    """Approve (publish), reject, retire."""
    if principal.is_admin:
        return True
    if principal.role == Role.DEPT_REVIEWER:
        return _own_department(principal, entry)
    if _is_town_operator(principal):
        return in_division_scope(principal, entry.division_code)
    return False


def can_reopen_entry(principal: Principal, entry: Any) -> bool:
    """Take a published/retired entry back to draft for a revision: editors and reviewers of it."""
    return can_edit_entry(principal, entry) or can_review_entry(principal, entry)


def can_claim_for(principal: Principal, department: Any) -> bool:
    """Claim or decline a basic item on behalf of ``department`` (an implementing body)."""
    if principal.is_admin:
        return True
    if principal.role == Role.DEPT_EDITOR:
        return principal.department_id is not None and principal.department_id == department.id
    if principal.role == Role.DIVISION_OPERATOR:
        return in_division_scope(principal, department.division_code)
    return False


def can_view_entry(principal: Principal, entry: Any) -> bool:
    if entry.status == EntryStatus.PUBLISHED.value and entry.applicable:
        return True
    if not principal.is_authenticated:
        return False
    return can_edit_entry(principal, entry) or can_review_entry(principal, entry)


def can_view_working_state(principal: Principal, entry: Any) -> bool:
    """An entry's drafts, open revision and version history: those who edit or review it (and the
    administrator). A published entry is public; what is being prepared for it is not."""
    return principal.is_authenticated and (
        principal.is_admin or can_edit_entry(principal, entry) or can_review_entry(principal, entry)
    )


def can_manage_catalogue(principal: Principal) -> bool:
    """Departments and basic items: the district administrator only."""
    return principal.is_admin
