"""套餐式服务（一件事） bundles: several implementation entries offered as one service.

Services take a Session, flush and never commit; every write is audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from catalog.elements import MATERIAL_SOURCES
from catalog.models import MATERIAL_FORMS, TIME_UNITS, Department, ImplementationEntry, Material
from core.audit import record
from core.auth import Principal
from core.db import flush_unique
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
    # The same name saved by someone else since the check above meets the unique index: the same answer.
    flush_unique(session, field_error("name", "已有同名的套餐式服务"))
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


# A bundle for starting something (开办/设立 a business, opening a shop or restaurant). Such a bundle
# should hold what opening needs, not the acts on a licence one already holds.
OPENING_BUNDLE = re.compile(r"开办|设立|新办|开业|开店|我要开|开设")
# Acts on an existing licence or registration (延续 renewal, 变更 change, 注销 cancellation).
NON_OPENING_ACTS = ("延续", "变更", "注销")


def is_opening_bundle(name: str, description: str = "") -> bool:
    """Whether a bundle is about opening (its name says so: 开办、设立、我要开…)."""
    return OPENING_BUNDLE.search(name or "") is not None


def non_opening_act(entry_name: str) -> str | None:
    """The 延续/变更/注销 act an entry's name holds, if any."""
    return next((act for act in NON_OPENING_ACTS if act in entry_name), None)


def check_bundle(session: Session, bundle_id: int) -> list[str]:
    """What an administrator should fix in a bundle, as Chinese warnings (empty when nothing).

    * an opening bundle (``is_opening_bundle``) holding 延续/变更/注销 entries;
    * entries that are not published, or recorded as not applicable (citizens do not see them);
    * entries whose 承诺时限 nobody recorded (the total time is then incomplete).
    """
    bundle = session.get(Bundle, bundle_id)
    if bundle is None:
        raise NotFound("套餐式服务不存在")
    ids = bundle_entry_ids(session, bundle_id)
    by_id = {
        e.id: e
        for e in session.exec(select(ImplementationEntry).where(col(ImplementationEntry.id).in_(ids))).all()
    }
    entries = [by_id[i] for i in ids if i in by_id]
    warnings: list[str] = []
    if is_opening_bundle(bundle.name, bundle.description):
        for e in entries:
            act = non_opening_act(e.name)
            if act:
                warnings.append(f"开办类“一件事”含{act}事项：{e.name}（{e.task_code}），开办时用不到，请换成新办/设立事项")
    for e in entries:
        if e.status != metrics.PUBLISHED or not e.applicable:
            warnings.append(f"事项未发布或本地不适用，公众页面不显示：{e.name}（{e.task_code}）")
        elif e.promise_days is None:
            warnings.append(f"事项未填报承诺时限，合计时限不完整：{e.name}（{e.task_code}）")
    return warnings


def check_bundles(session: Session) -> dict[int, list[str]]:
    """``check_bundle`` for every bundle with something to fix, by bundle id."""
    out: dict[int, list[str]] = {}
    for b in list_bundles(session):
        assert b.id is not None  # noqa: S101 (a stored row)
        found = check_bundle(session, b.id)
        if found:
            out[b.id] = found
    return out


def bundles_of_entries(session: Session, entry_ids: list[int]) -> dict[int, list[Bundle]]:
    """The published bundles each entry belongs to (for links from the entry's page)."""
    if not entry_ids:
        return {}
    out: dict[int, list[Bundle]] = {}
    for entry_id, bundle in session.execute(
        select(col(BundleEntry.entry_id), Bundle)
        .join(Bundle, col(Bundle.id) == col(BundleEntry.bundle_id))
        .where(col(BundleEntry.entry_id).in_(entry_ids), col(Bundle.published))
        .order_by(col(Bundle.name))
    ).all():
        out.setdefault(entry_id, []).append(bundle)
    return out


@dataclass
class BundleTime:
    """The bundle's promised time, one figure per unit (工作日 and 自然日 are never added together).

    ``total`` adds the steps' 承诺时限 up (the entries are handled one after another in the worst case:
    the platform does not record which steps run in parallel, so the sum is the honest upper bound);
    ``longest`` is the longest single step, what the whole takes at best when every step runs at once.
    A step promised in 0 days is 即办 (done on the spot).
    """

    unit: str
    label: str
    total: int
    longest: int
    steps: int


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
    # The promised time per unit (see BundleTime); empty when no entry recorded one.
    times: list[BundleTime] = field(default_factory=list)


def material_key(m: Any) -> tuple[str, str, str, str]:
    """Two materials are the same material, and merged, only when they have the same name (ignoring
    spaces), the same form (纸质/电子/纸质或电子), the same source (来源渠道, unrecorded counts as its own
    value) and the same e-licence type (or none). "居民身份证" on paper and "居民身份证" as an e-licence
    are listed apart: the applicant brings them differently."""
    return ("".join((m.name or "").split()), m.form or "", m.source_channel or "", m.licence_type_code or "")


def bundle_times(entries: list[Any]) -> list[BundleTime]:
    """The promised time of a bundle's entries, per unit (see BundleTime)."""
    by_unit: dict[str, list[int]] = {}
    for e in entries:
        if e.promise_days is not None:
            by_unit.setdefault(e.promise_unit or "", []).append(e.promise_days)
    return [
        BundleTime(unit, TIME_UNITS.get(unit, "天（单位未填报）"), sum(days), max(days), len(days))
        for unit, days in sorted(by_unit.items(), key=lambda kv: (kv[0] != "working", kv[0]))
    ]


def bundle_view(session: Session, bundle_id: int, public: bool = True) -> BundleView:
    """What a citizen sees: entries in order, merged deduplicated materials, total time and fees.

    Total promised time is the sum of the entries' 承诺时限 per unit (``bundle_times``: the entries are
    handled one after another in the worst case), with the longest step beside it; entries without
    one are named instead of counted as zero. Materials merge only when ``material_key`` says they are
    the same material.
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
    materials: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for m in session.exec(
        select(Material)
        .where(col(Material.entry_id).in_(shown))
        .order_by(col(Material.entry_id), col(Material.position), col(Material.id))
    ).all():
        key = material_key(m)
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
                "form_label": MATERIAL_FORMS.get(m.form, m.form),
                "source_label": MATERIAL_SOURCES.get(m.source_channel or "", "未填报"),
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
                "promise_unit_label": TIME_UNITS.get(e.promise_unit or "", "天（单位未填报）"),
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
        times=bundle_times(ordered),
    )
