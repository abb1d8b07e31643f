"""The staff form's side of the national element set: values to show and the posted form read back.

Pure (no Flask): ``form`` is any mapping with ``get`` and ``getlist`` (a werkzeug MultiDict). Only the
shape is read here; the rules and the Chinese messages are the service's (catalog/entry_elements.py),
so the form, the API and the CLI say the same thing. An empty choice is "未填报", never "否".
"""

from __future__ import annotations

import re
from typing import Any

from catalog.entry_elements import ELEMENTS, MATERIAL_ELEMENTS, Element

FORM_ROW_PREFIX = {"materials": "m", "fees": "f", "steps": "s", "faqs": "q"}
ROW_KEY = re.compile(r"^(materials|fees|steps|faqs)\W*(\d+)\W*([a-z_]*)\W*$")


def _shown(spec: Element, value: Any) -> Any:
    if spec.kind == "bool":
        return "" if value is None else ("true" if value else "false")
    if spec.kind == "codes":
        return [c for c in (value or "").split(",") if c]
    return "" if value is None else str(value)


def element_values(entry: Any) -> dict[str, Any]:
    """The new elements of ``entry`` as the form shows them."""
    return {spec.name: _shown(spec, getattr(entry, spec.name)) for spec in ELEMENTS}


def material_element_values(material: Any) -> dict[str, Any]:
    return {spec.name: _shown(spec, getattr(material, spec.name)) for spec in MATERIAL_ELEMENTS}


def _read(spec: Element, form: Any, key: str) -> tuple[Any, Any]:
    """(value to re-display, value for the service) of one posted element."""
    if spec.kind == "codes":
        chosen = [c for c in form.getlist(key) if c]
        return chosen, ",".join(chosen) or None
    raw = (form.get(key) or "").strip()
    return raw, raw or None


def parse_elements(form: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values to re-display, fields for update_entry) of the new entry elements."""
    values: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for spec in ELEMENTS:
        values[spec.name], fields[spec.name] = _read(spec, form, spec.name)
    return values, fields


def parse_material_elements(form: Any, i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    values: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for spec in MATERIAL_ELEMENTS:
        values[spec.name], fields[spec.name] = _read(spec, form, f"m-{i}-{spec.name}")
    return values, fields


def _row_indices(prefix: str, form: Any) -> list[int]:
    indices = set()
    for key in form:
        match = re.match(rf"^{prefix}-(\d+)-", key)
        if match and len(match.group(1)) < 4:
            indices.add(int(match.group(1)))
    return sorted(indices)


def parse_steps(form: Any) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """办理流程 rows ``s-<i>-name/post/days/unit``; a row left blank is dropped."""
    shown: list[dict[str, str]] = []
    rows: list[dict[str, Any]] = []
    for i in _row_indices("s", form):
        row = {k: (form.get(f"s-{i}-{k}") or "").strip() for k in ("name", "post", "days", "unit")}
        if not row["name"] and not row["post"] and not row["days"]:
            continue
        shown.append(row)
        rows.append({"name": row["name"], "post": row["post"] or None, "days": row["days"] or None,
                     "unit": row["unit"] or None})
    return shown, rows


def parse_faqs(form: Any) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """常见问题 rows ``q-<i>-question/answer``; a row left blank is dropped."""
    shown: list[dict[str, str]] = []
    rows: list[dict[str, Any]] = []
    for i in _row_indices("q", form):
        row = {k: (form.get(f"q-{i}-{k}") or "").strip() for k in ("question", "answer")}
        if not row["question"] and not row["answer"]:
            continue
        shown.append(row)
        rows.append(dict(row))
    return shown, rows


def step_values(steps: list[Any]) -> list[dict[str, str]]:
    return [
        {
            "name": s.name,
            "post": s.post or "",
            "days": "" if s.days is None else str(s.days),
            "unit": s.unit or "",
        }
        for s in steps
    ]


def faq_values(faqs: list[Any]) -> list[dict[str, str]]:
    return [{"question": f.question, "answer": f.answer} for f in faqs]


def form_key(key: str) -> str | None:
    """A service error key (``steps[1].days``) as the form's input name (``s-1-days``); None if not a row."""
    match = ROW_KEY.match(key)
    if not match:
        return None
    kind, index, attr = match.groups()
    prefix = FORM_ROW_PREFIX[kind]
    if kind == "fees" and attr == "amount_fen":
        attr = "amount"
    return f"{prefix}-{index}-{attr}" if attr else f"{prefix}-{index}"
