"""套餐式服务（一件事） bundles: several implementation entries offered as one service.

Services take a Session, flush and never commit; every write is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from catalog.models import Department, ImplementationEntry, Material
from core.audit import record
from core.auth import Principal
from core.errors import NotFound, field_error
from core.types import utcnow
from reports import metrics
from reports.models import Bundle, BundleEntry
from reports.services import entry_ids_by_task_code, require_report_admin


def _bundle_entries(session: Session, entry_ids: list[int]) -> list[int]:
    ids: list[int] = []
    for value in entry_ids:
        if value not in ids:
            ids.append(value)
    if not ids:
        raise field_error("entry_ids", "请至少选择一个事项")
    found = {
        i
        for (i,) in session.execute(
            select(col(ImplementationEntry.id)).where(col(ImplementationEntry.id).in_(ids))
        ).all()
    }
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise field_error("entry_ids", f"事项不存在：{', '.join(map(str, unknown))}")
    return ids


def _bundle_entries_by_code(session: Session, task_codes: list[str]) -> list[int]:
    codes = [c.strip() for c in task_codes if c.strip()]
    found = entry_ids_by_task_code(session, codes)
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise field_error("task_codes", f"未知的实施编码：{', '.join(unknown)}")
    return [found[c] for c in codes]


def save_bundle(
    session: Session,
    actor: Principal,
    *,
    name: str,
    description: str = "",
    entry_ids: list[int] | None = None,
    task_codes: list[str] | None = None,
    published: bool = False,
    bundle_id: int | None = None,
) -> Bundle:
    """Create or update a bundle (admin only). Entries are given by id or by 实施编码, in order."""
    require_report_admin(actor)
    name = (name or "").strip()
    if not name:
        raise field_error("name", "请填写名称")
    if len(name) > 100:
        raise field_error("name", "名称不超过100个字")
    ids = _bundle_entries(session, list(entry_ids or []) + _bundle_entries_by_code(session, task_codes or []))
    clash = session.exec(select(Bundle).where(col(Bundle.name) == name)).first()
    if clash is not None and clash.id != bundle_id:
        raise field_error("name", "已有同名的套餐式服务")
    if bundle_id is None:
        bundle = Bundle(name=name, description=description or "")
        session.add(bundle)
        old = None
    else:
        found = session.get(Bundle, bundle_id)
        if found is None:
            raise NotFound("套餐式服务不存在")
        bundle = found
        old = {
            "name": bundle.name,
            "published": bundle.published,
            "entries": bundle_entry_ids(session, bundle_id),
        }
        bundle.name, bundle.description = name, description or ""
    now = utcnow()
    if published and not bundle.published:
        bundle.published_at = now
    bundle.published = published
    bundle.updated_at = now
    session.flush()
    assert bundle.id is not None  # noqa: S101 (flushed)
    session.execute(sa.delete(BundleEntry).where(col(BundleEntry.bundle_id) == bundle.id))
    for position, entry_id in enumerate(ids):
        session.add(BundleEntry(bundle_id=bundle.id, entry_id=entry_id, position=position))
    session.flush()
    record(
        session,
        actor=actor,
        action="reports.save_bundle",
        entity_type="bundle",
        entity_id=bundle.id,
        old=old,
        new={"name": name, "published": published, "entries": ids},
    )
    return bundle


def bundle_entry_ids(session: Session, bundle_id: int) -> list[int]:
    return [
        i
        for (i,) in session.execute(
            select(col(BundleEntry.entry_id))
            .where(col(BundleEntry.bundle_id) == bundle_id)
            .order_by(col(BundleEntry.position), col(BundleEntry.id))
        ).all()
    ]


def list_bundles(session: Session, published_only: bool = False) -> list[Bundle]:
    query = select(Bundle).order_by(col(Bundle.id))
    if published_only:
        query = query.where(col(Bundle.published))
    return list(session.exec(query).all())


@dataclass
class BundleView:
    bundle: Bundle
    entries: list[dict[str, Any]]
    materials: list[dict[str, Any]]
    total_promise_days: int | None
    days_unknown: list[str]
    total_fee_fen: int
    fee_lines: list[dict[str, Any]]
    # Entries whose 是否收费 nobody recorded: the total is then not "不收费", it is incomplete.
    charges_unknown: list[str] = field(default_factory=list)


def bundle_view(session: Session, bundle_id: int, public: bool = True) -> BundleView:
    """What a citizen sees: entries in order, merged deduplicated materials, total time and fees.

    Total promised time is the sum of the entries' 承诺时限 (the entries are handled one after
    another in the worst case); entries without one are named instead of counted as zero.
    """
    from catalog.models import Fee

    bundle = session.get(Bundle, bundle_id)
    if bundle is None or (public and not bundle.published):
        raise NotFound("套餐式服务不存在或未上线")
    ids = bundle_entry_ids(session, bundle_id)
    entries = {
        e.id: e
        for e in session.exec(
            select(ImplementationEntry).where(col(ImplementationEntry.id).in_(ids))
        ).all()
    }
    dept_names = dict(session.execute(select(col(Department.id), col(Department.name))).all())
    ordered = [entries[i] for i in ids if i in entries]
    if public:
        ordered = [e for e in ordered if e.status == metrics.PUBLISHED and e.applicable]
    shown = [e.id for e in ordered]
    materials: dict[str, dict[str, Any]] = {}
    for m in session.exec(
        select(Material)
        .where(col(Material.entry_id).in_(shown))
        .order_by(col(Material.entry_id), col(Material.position), col(Material.id))
    ).all():
        key = (m.licence_type_code or "") or "".join(m.name.split())
        entry = entries[m.entry_id]
        if key in materials:
            materials[key]["entries"].append(entry.name)
            # 份数 not recorded (None) on one entry does not hide the other's recorded count.
            counts = [c for c in (materials[key]["copies"], m.copies) if c is not None]
            materials[key]["copies"] = max(counts) if counts else None
            materials[key]["required"] = materials[key]["required"] or m.required
        else:
            materials[key] = {
                "name": m.name,
                "form": m.form,
                "copies": m.copies,
                "required": m.required,
                "licence_type_code": m.licence_type_code,
                "entries": [entry.name],
            }
    fee_lines: list[dict[str, Any]] = [
        {"entry": entries[f.entry_id].name, "name": f.name, "amount_fen": f.amount_fen}
        for f in session.exec(
            select(Fee).where(col(Fee.entry_id).in_(shown)).order_by(col(Fee.entry_id), col(Fee.id))
        ).all()
    ]
    unknown = [e.name for e in ordered if e.promise_days is None]
    return BundleView(
        bundle=bundle,
        entries=[
            {
                "id": e.id,
                "name": e.name,
                "task_code": e.task_code,
                "department": dept_names.get(e.department_id, ""),
                "promise_days": e.promise_days,
                "promise_unit": e.promise_unit,
                "visits": e.visits,
                "no_contact": e.no_contact,
            }
            for e in ordered
        ],
        materials=list(materials.values()),
        total_promise_days=sum(e.promise_days for e in ordered if e.promise_days is not None)
        if any(e.promise_days is not None for e in ordered)
        else None,
        days_unknown=unknown,
        total_fee_fen=sum(f["amount_fen"] for f in fee_lines),
        fee_lines=fee_lines,
        charges_unknown=[e.name for e in ordered if e.charges is None],
    )
