"""Review settings an administrator may change: today only four-eyes (双人审核), on by default.

Four-eyes means the person who submitted an entry or a revision cannot also approve it. A setting
nobody changed reads as its default; every change is audited with the administrator's reason.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from catalog.inputs import _as_text, _raise_if, _require
from catalog.revision_models import ReviewSetting
from core import audit
from core.auth import Principal
from core.errors import Invalid
from core.types import utcnow

FOUR_EYES = "four_eyes"
DEFAULTS: dict[str, Any] = {FOUR_EYES: True}
SETTING_LABELS = {FOUR_EYES: "双人审核（提交人不能审核通过自己提交的清单或修订）"}


def get_setting(session: Session, key: str) -> Any:
    row = session.get(ReviewSetting, key)
    return DEFAULTS[key] if row is None else row.value


def four_eyes_enabled(session: Session) -> bool:
    return bool(get_setting(session, FOUR_EYES))


def set_four_eyes(session: Session, actor: Principal, enabled: Any, reason: Any = None) -> bool:
    """Turn four-eyes review on or off (administrators only), audited with an optional reason."""
    _require(actor.is_admin, "只有区级管理员可以修改审核设置")
    if not isinstance(enabled, bool):
        raise Invalid("双人审核应为是/否", {"enabled": ["应为 true 或 false"]})
    errors: dict[str, list[str]] = {}
    text = _as_text(reason, "reason", 500, errors)
    _raise_if(errors)
    old = four_eyes_enabled(session)
    if old == enabled:
        return enabled
    row = session.get(ReviewSetting, FOUR_EYES)
    if row is None:
        row = ReviewSetting(key=FOUR_EYES, value=enabled)
        session.add(row)
    row.value = enabled
    row.updated_by = actor.user_id
    row.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="settings.four_eyes",
        entity_type="review_setting",
        entity_id=FOUR_EYES,
        old={FOUR_EYES: old},
        new={FOUR_EYES: enabled},
        reason=text,
    )
    return enabled
