"""The national element set (standards §1.4): how each new element is checked, and the child lists.

``catalog.entries.update_entry`` calls the functions here for the elements that #12 added, so the
coercion of the older fields and this one stay apart (the revisions work wraps update_entry; the
quality rules replace its cross-checks). Every coercer appends Chinese messages naming the field
(by its label from catalog/elements.py) to ``errors`` and never raises, so one request reports every
bad field at once. ``None`` is "not recorded" (未填报) and is always accepted for an element: a
person may record that they do not know yet, but nobody may invent a default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from catalog import elements as el
from catalog.element_models import EntryAttachment, EntryFaq, EntryStep
from catalog.inputs import _as_int, _as_text, _columns, _norm_codes
from catalog.models import TIME_UNITS, ImplementationEntry
from core import audit

MAX_STEPS = 50
MAX_FAQS = 50
MAX_DAYS = 3650
MAX_COPIES = 99
PHONE_RE = re.compile(r"^[0-9+\-() 、,，/转]{3,40}$")
URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


@dataclass(frozen=True)
class Element:
    """One recordable element: its column name, kind and, for coded kinds, its code list."""

    name: str
    kind: str  # text, longtext, code, codes, bool, url, phone, attachment
    max_len: int = 500
    choices: Mapping[str, str] | None = None

    @property
    def label(self) -> str:
        return el.FIELD_LABELS.get(self.name, self.name)


# The entry columns added by the national element set, in the order a citizen reads them
# (who, what to bring, how long, how much, where, online, what you get, where to complain).
ELEMENTS: tuple[Element, ...] = (
    Element("subject_nature", "code", 20, el.SUBJECT_NATURES),
    Element("entrusted_department", "text", 200),
    Element("joint_bodies", "text", 500),
    Element("power_source", "code", 20, el.POWER_SOURCES),
    Element("handle_item", "code", 20, el.HANDLE_ITEMS),
    Element("service_objects", "codes", 40, el.SERVICE_OBJECTS),
    Element("special_procedure", "longtext", 2000),
    Element("anticipate_explain", "text", 500),
    Element("promise_explain", "text", 500),
    Element("charges", "bool"),
    Element("in_hall", "bool"),
    Element("handle_area", "code", 20, el.HANDLE_AREAS),
    Element("quantity_limit", "text", 500),
    Element("mobile_url", "url", 500),
    Element("pay_online", "bool"),
    Element("result_type", "code", 20, el.RESULT_TYPES),
    Element("result_name", "text", 200),
    Element("result_sample", "attachment"),
    Element("complaint_phone", "phone", 40),
    Element("review_channel", "text", 500),
    Element("litigation_channel", "text", 500),
)
ELEMENT_FIELDS: tuple[str, ...] = tuple(e.name for e in ELEMENTS)
BY_NAME = {e.name: e for e in ELEMENTS}

MATERIAL_ELEMENTS: tuple[Element, ...] = (
    Element("source_channel", "code", 20, el.MATERIAL_SOURCES),
    Element("original", "code", 10, el.MATERIAL_ORIGINALS),
    Element("accept_standard", "text", 500),
    Element("basis", "text", 500),
    Element("blank_form", "attachment"),
    Element("sample", "attachment"),
)
MATERIAL_ELEMENT_KEYS = frozenset(e.name for e in MATERIAL_ELEMENTS)
STEP_KEYS = frozenset({"name", "post", "days", "unit"})
FAQ_KEYS = frozenset({"question", "answer"})


def _choices_text(choices: Mapping[str, str]) -> str:
    return "、".join(f"{label}（{code}）" for code, label in choices.items())


def _as_tristate(value: Any, key: str, label: str, errors: dict[str, list[str]]) -> bool | None:
    """是/否/未填报: a form's empty choice is "not recorded", never "no"."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "":
            return None
        if text in {"true", "1", "yes", "是"}:
            return True
        if text in {"false", "0", "no", "否"}:
            return False
    errors.setdefault(key, []).append(f"{label}应为是、否或未填报")
    return None


def coerce_element(spec: Element, value: Any, key: str, errors: dict[str, list[str]]) -> Any:
    """One element's value as stored, or None (未填报); bad input appends a message under ``key``."""
    label = el.FIELD_LABELS.get(spec.name) or el.MATERIAL_LABELS.get(spec.name, spec.name)
    before = len(errors.get(key, []))
    if spec.kind == "bool":
        return _as_tristate(value, key, label, errors)
    if spec.kind == "attachment":
        if value is None or value == "":
            return None
        number = _as_int(value, key, 1, 2_147_483_647, errors)
        if number is None:
            errors[key] = [*errors.get(key, [])[:before], f"{label}应为已上传文件的编号"]
        return number
    if spec.kind == "codes":
        if value is None or value == "" or value == []:
            return None
        codes = _norm_codes(value, spec.choices or {}, key, errors)
        if len(errors.get(key, [])) > before:
            errors[key] = [
                *errors[key][:before],
                f"{label}应从以下选择（可多选）：{_choices_text(spec.choices or {})}",
            ]
        return codes or None
    text = _as_text(value, key, spec.max_len, errors)
    if len(errors.get(key, [])) > before:
        errors[key] = [
            *errors[key][:before],
            *(f"{label}{m}" if not m.startswith(label) else m for m in errors[key][before:]),
        ]
        return None
    if text is None:
        return None
    if spec.kind == "code" and text not in (spec.choices or {}):
        errors.setdefault(key, []).append(f"{label}应为以下之一：{_choices_text(spec.choices or {})}")
    elif spec.kind == "url" and not URL_RE.match(text):
        errors.setdefault(key, []).append(f"{label}应为 http:// 或 https:// 开头的网址")
    elif spec.kind == "phone" and not PHONE_RE.match(text):
        errors.setdefault(key, []).append(f"{label}只能包含数字、空格、+、-、括号")
    return text


def coerce_element_fields(fields: Mapping[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    """The new elements among ``fields`` as stored values (the older fields are left to the caller)."""
    return {
        key: coerce_element(BY_NAME[key], value, key, errors)
        for key, value in fields.items()
        if key in BY_NAME
    }


def coerce_copies(value: Any, key: str, errors: dict[str, list[str]]) -> int | None:
    """份数: a whole number from 1 to 99, or None (未填报). 0 copies is not a requirement."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    before = len(errors.get(key, []))
    copies = _as_int(value, key, 1, MAX_COPIES, errors)
    if len(errors.get(key, [])) > before:
        errors[key] = [
            *errors[key][:before],
            f"份数应为 1 到 {MAX_COPIES} 的整数（不确定请留空，表示未填报）",
        ]
    return copies


def coerce_material_elements(
    row: Mapping[str, Any], prefix: str, errors: dict[str, list[str]]
) -> dict[str, Any]:
    """来源渠道, 原件/复印件, 受理标准, 填报依据 and the two file references of one material row."""
    return {
        e.name: coerce_element(e, row.get(e.name), f"{prefix}.{e.name}", errors) for e in MATERIAL_ELEMENTS
    }


def _rows(
    rows: Any, what: str, label: str, limit: int, errors: dict[str, list[str]]
) -> list[Mapping[str, Any]]:
    if not isinstance(rows, list):
        errors.setdefault(what, []).append(f"{label}应为列表")
        return []
    if len(rows) > limit:
        errors.setdefault(what, []).append(f"{label}最多 {limit} 项")
        return []
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            errors.setdefault(f"{what}[{i}]", []).append(f"{label}第 {i + 1} 项应为对象")
            continue
        out.append(row)
    return out


def _unknown(
    row: Mapping[str, Any], allowed: Iterable[str], prefix: str, errors: dict[str, list[str]]
) -> None:
    for key in sorted(set(row) - set(allowed)):
        errors.setdefault(f"{prefix}.{key}", []).append("未知字段")


def coerce_steps(rows: Any, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    """办理流程: each step needs its name; post, time limit and unit may be 未填报."""
    out = []
    for i, row in enumerate(_rows(rows, "steps", "办理流程", MAX_STEPS, errors)):
        prefix = f"steps[{i}]"
        _unknown(row, STEP_KEYS, prefix, errors)
        name = _as_text(row.get("name"), f"{prefix}.name", 100, errors, required=True)
        if f"{prefix}.name" in errors:
            errors[f"{prefix}.name"] = [f"办理环节名称必填，不超过 100 个字（第 {i + 1} 步）"]
        days = _as_int(row.get("days"), f"{prefix}.days", 0, MAX_DAYS, errors, nullable=True)
        if f"{prefix}.days" in errors:
            errors[f"{prefix}.days"] = [f"环节时限应为 0 到 {MAX_DAYS} 的整数（第 {i + 1} 步）"]
        unit = row.get("unit") or None
        if unit is not None and unit not in TIME_UNITS:
            errors.setdefault(f"{prefix}.unit", []).append(
                "环节时限单位应为工作日（working）或自然日（calendar）"
            )
        out.append(
            {
                "position": i,
                "name": name or "",
                "post": _as_text(row.get("post"), f"{prefix}.post", 100, errors),
                "days": days,
                "unit": unit,
            }
        )
    return out


def coerce_faqs(rows: Any, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    """常见问题: a question and its answer, both required."""
    out = []
    for i, row in enumerate(_rows(rows, "faqs", "常见问题", MAX_FAQS, errors)):
        prefix = f"faqs[{i}]"
        _unknown(row, FAQ_KEYS, prefix, errors)
        question = _as_text(row.get("question"), f"{prefix}.question", 500, errors, required=True)
        if f"{prefix}.question" in errors:
            errors[f"{prefix}.question"] = [f"常见问题的问题必填，不超过 500 个字（第 {i + 1} 条）"]
        answer = _as_text(row.get("answer"), f"{prefix}.answer", 2000, errors, required=True)
        if f"{prefix}.answer" in errors:
            errors[f"{prefix}.answer"] = [f"常见问题的解答必填，不超过 2000 个字（第 {i + 1} 条）"]
        out.append({"position": i, "question": question or "", "answer": answer or ""})
    return out


def check_attachment_refs(
    session: Session,
    entry_id: int,
    changes: Mapping[str, Any],
    materials: list[dict[str, Any]] | None,
    errors: dict[str, list[str]],
) -> None:
    """Every file an entry points to must be one uploaded for that entry (not another department's)."""
    refs: list[tuple[str, int]] = []
    if changes.get("result_sample") is not None:
        refs.append(("result_sample", changes["result_sample"]))
    for i, row in enumerate(materials or []):
        for key in ("blank_form", "sample"):
            if row.get(key) is not None:
                refs.append((f"materials[{i}].{key}", row[key]))
    if not refs:
        return
    ids = {ref for _, ref in refs}
    own = set(
        session.exec(
            select(EntryAttachment.id).where(
                col(EntryAttachment.id).in_(ids), EntryAttachment.entry_id == entry_id
            )
        ).all()
    )
    for key, ref in refs:
        if ref not in own:
            label = el.FIELD_LABELS.get(key) or el.MATERIAL_LABELS.get(key.rsplit(".", 1)[-1], key)
            errors.setdefault(key, []).append(f"{label}：文件 {ref} 不存在或不属于本实施清单，请先上传")


def entry_steps(session: Session, entry_id: int | None) -> list[EntryStep]:
    return list(
        session.exec(
            select(EntryStep)
            .where(EntryStep.entry_id == entry_id)
            .order_by(col(EntryStep.position), col(EntryStep.id))
        ).all()
    )


def entry_faqs(session: Session, entry_id: int | None) -> list[EntryFaq]:
    return list(
        session.exec(
            select(EntryFaq)
            .where(EntryFaq.entry_id == entry_id)
            .order_by(col(EntryFaq.position), col(EntryFaq.id))
        ).all()
    )


def children_snapshot(session: Session, entry_id: int | None) -> dict[str, list[dict[str, Any]]]:
    """The "steps" and "faqs" lists of an entry snapshot (same shape as the change payload)."""
    skip = ("id", "entry_id")
    return {
        "steps": [
            {k: v for k, v in _columns(s).items() if k not in skip} for s in entry_steps(session, entry_id)
        ],
        "faqs": [
            {k: v for k, v in _columns(f).items() if k not in skip} for f in entry_faqs(session, entry_id)
        ],
    }


def replace_children(
    session: Session,
    entry_id: int,
    steps: list[dict[str, Any]] | None,
    faqs: list[dict[str, Any]] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Replace the steps and/or FAQs given; returns the (old, new) audit values of the lists that changed."""
    old_d: dict[str, Any] = {}
    new_d: dict[str, Any] = {}
    before = children_snapshot(session, entry_id)
    lists = (("steps", steps, EntryStep, entry_steps), ("faqs", faqs, EntryFaq, entry_faqs))
    for name, rows, model, current in lists:
        if rows is None or before[name] == rows:
            continue
        for old in current(session, entry_id):
            session.delete(old)
        session.flush()
        session.add_all(model(entry_id=entry_id, **row) for row in rows)
        old_d[name], new_d[name] = before[name], rows
    session.flush()
    return old_d, new_d


def display_value(spec: Element, value: Any) -> str | None:
    """An element as a person reads it (labels, 是/否), or None when not recorded."""
    if value is None or value == "":
        return None
    if spec.kind == "bool":
        return "是" if value else "否"
    if spec.kind == "code":
        return str((spec.choices or {}).get(value, value))
    if spec.kind == "codes":
        return "、".join((spec.choices or {}).get(c, c) for c in str(value).split(",") if c)
    if spec.kind == "attachment":
        return f"文件 {value}"
    return str(value)


def element_rows(entry: Any) -> list[tuple[str, str | None]]:
    """(label, shown value or None) of every new element of ``entry``, in reading order."""
    return [(spec.label, display_value(spec, getattr(entry, spec.name))) for spec in ELEMENTS]


def mark_demo_content(session: Session, actor: Any, entry_id: int) -> None:
    """Mark an entry's elements as 示例内容 (written by the demo loader, not by its department).

    Audited; shown to staff and citizens. Only the demo calls it: production data is never marked.
    """
    entry = session.get(ImplementationEntry, entry_id)
    if entry is None or entry.demo_content:
        return
    entry.demo_content = True
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="entry.demo_content",
        entity_type="implementation_entry",
        entity_id=entry_id,
        old={"demo_content": False},
        new={"demo_content": True},
    )
