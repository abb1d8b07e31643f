"""Demo content for the national element set (issue #12 item 11): a full, plausible element set per
item type for the town and village entries and for some district entries, marked 示例内容.

Everything here is invented for the demonstration and is marked so (``mark_demo_content``): the
staff pages and the public page say 示例内容. Every other entry keeps what the importer gave it,
i.e. nothing, and reads 信息待补充.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from catalog import revisions
from catalog.entry_elements import mark_demo_content
from catalog.models import NO_CONTACT_SCOPE_TYPES, EntryStatus, ImplementationEntry
from core.auth import SYSTEM
from core.db import id_of

DISTRICT_ELEMENT_ENTRIES = 110  # with the 50 revised for the no-contact rule: ≥ 150 district entries

# Per 事项类型: (业务办理项, 服务对象, 审批结果类型, 审批结果名称 pattern, 实施主体性质, 权力来源)
BY_TYPE: dict[str, tuple[str, str, str, str, str, str]] = {
    "01": ("new", "1,2", "licence", "{name}决定书", "statutory", "own"),
    "04": ("new", "1,2", "document", "{name}缴款通知书", "statutory", "own"),
    "05": ("new", "1", "document", "{name}核定通知书", "statutory", "own"),
    "07": ("new", "1", "certificate", "{name}证明", "statutory", "own"),
    "08": ("new", "1,2,4", "document", "{name}表彰决定", "statutory", "own"),
    "09": ("new", "1,2", "document", "{name}裁决书", "statutory", "own"),
    "10": ("new", "1,2", "document", "{name}办理结果告知书", "statutory", "own"),
    "20": ("new", "1", "other", "{name}办理回执", "statutory", "own"),
}
DEFAULT_TYPE = ("other", "1", "other", "{name}办理结果", "statutory", "own")


def element_set(entry: ImplementationEntry, *, passes: bool, seed: int) -> dict[str, Any]:
    """The national elements of one entry as update_entry fields, chosen from its type and level."""
    handle_item, objects, result_type, result_name, nature, source = BY_TYPE.get(
        entry.task_type, DEFAULT_TYPE
    )
    is_licence = entry.task_type == "01"
    town_power = entry.level != "4" and entry.task_type != "20"  # a town exercising a devolved power
    # A licence or a ruling that is not handled online: one visit to hand in the originals and one
    # to collect the result, for half of them (so the demo's 最多跑一次率 is not a flat 100 %).
    two_visits = not passes and entry.task_type in ("01", "09") and seed % 2 == 0
    reason = "提交申请材料时核验原件一次，领取审批结果一次"
    visits = {"visits": 2, "visits_reason": reason} if two_visits else {}
    return visits | {
        "subject_nature": nature,
        "entrusted_department": None,
        "joint_bodies": None,
        "power_source": "delegated" if town_power else source,
        "handle_item": handle_item,
        "service_objects": objects,
        "special_procedure": "需现场勘验的，勘验时间不计入办理时限" if is_licence else None,
        "anticipate_explain": "自受理之日起计算",
        "promise_explain": "材料齐全、符合法定形式的，自受理之日起计算" if seed % 3 else "材料齐全当场办结",
        "charges": False,
        "in_hall": True,
        "handle_area": "district" if entry.level == "4" else "local",
        "quantity_limit": "无数量限制",
        "result_type": result_type,
        "result_name": result_name.format(name=entry.name)[:200],
        "complaint_phone": "12345",
        "review_channel": "泰州市高港区人民政府（行政复议）",
        "litigation_channel": "泰州市高港区人民法院",
        "mobile_url": "https://m.jszwfw.gov.cn/" if passes else None,
        "pay_online": False,
    }


def material_elements(materials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """来源渠道, 原件/复印件, 受理标准 and 依据 for the demo's materials."""
    out = []
    for m in materials:
        is_form = "申请表" in m["name"]
        out.append(
            m
            | {
                "source_channel": "applicant" if is_form else "government",
                "original": "original" if is_form or m["form"] != "paper" else "both",
                "accept_standard": "内容填写完整，申请人签字" if is_form else "证件在有效期内，信息清晰可辨",
                "basis": "《江苏省政务服务事项实施清单编制规范》（示例）",
            }
        )
    return out


def steps_for(entry: ImplementationEntry, promise_days: int) -> list[dict[str, Any]]:
    if promise_days == 0:
        return [{"name": "受理并办结", "post": "综合受理窗口", "days": 0, "unit": "working"}]
    review = max(promise_days - 2, 1)
    return [
        {"name": "受理", "post": "综合受理窗口", "days": 1, "unit": "working"},
        {"name": "审查", "post": "业务经办岗", "days": review, "unit": "working"},
        {"name": "决定", "post": "分管负责人", "days": 1, "unit": "working"},
    ]


def faqs_for(entry: ImplementationEntry) -> list[dict[str, str]]:
    return [
        {
            "question": "可以委托他人代办吗？",
            "answer": "可以。代办人须携带本人身份证件和申请人签字的授权委托书。",
        },
        {"question": "在哪里查询办理进度？", "answer": "可拨打咨询电话，或登录江苏政务服务网查询。"},
    ]


def complete_district_entries(session: Session, complete: Any, want: int = DISTRICT_ELEMENT_ENTRIES) -> int:
    """Give ``want`` more published district entries a full demo element set through a revision each
    (opened, filled, submitted and approved), so they stay published throughout.

    ``complete(session, entry, seed)`` is the catalogue demo's filling of an open revision (so the
    older elements are chosen the same way). Entries already marked 示例内容 and those in the
    no-contact sample are skipped.
    """
    rows = list(
        session.exec(
            select(ImplementationEntry)
            .where(
                ImplementationEntry.level == "4",
                ImplementationEntry.status == EntryStatus.PUBLISHED.value,
                col(ImplementationEntry.applicable).is_(True),
                col(ImplementationEntry.demo_content).is_(False),
                col(ImplementationEntry.task_type).in_(sorted({*NO_CONTACT_SCOPE_TYPES, "20", "09"})),
            )
            .order_by(col(ImplementationEntry.id))
            .limit(want)
        )
    )
    for i, entry in enumerate(rows):
        revisions.open_revision(session, SYSTEM, id_of(entry), reason="补充实施要素（演示数据）")
        complete(session, entry, seed=3000 + i)
        revisions.submit_revision(session, SYSTEM, id_of(entry))
        revisions.approve_revision(session, SYSTEM, id_of(entry))
    return len(rows)


def mark(session: Session, entry: ImplementationEntry) -> None:
    mark_demo_content(session, SYSTEM, id_of(entry))
