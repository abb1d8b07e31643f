"""Figures of the annual report that the platform has no source for, entered per year by an administrator.

Each figure has one definition here: its key (the column ``key`` of
``data/gaogang_2018_report_figures.csv``), the Chinese name that is also its narrative placeholder
(``{12345热线有效诉求}``), the unit printed after it, its kind (count, percent, amount, date, text) and,
where the platform computes the same figure itself, the metric of the snapshot it comes from. A
computed figure is printed from the frozen snapshot; the entered value stands in only where the
snapshot has no data for it (a year before the platform kept records), and the internal appendix says
which one the report used and shows both when they differ.

Values are stored as text (a count, an amount in 元, an ISO date, a name) with the unit and whether the
value is a lower bound (“7万余条”). ``load_figures_csv`` reads the file's format with line-numbered
errors: any bad line refuses the whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from core.audit import record
from core.auth import Principal
from core.csv_input import header_problems, parse_iso_date, table_rows, text_records
from core.errors import Invalid
from core.types import utcnow
from reports.models import EnteredFigure
from reports.services import check_year, require_report_admin

COUNT, PERCENT, AMOUNT, DATE, TEXT = "count", "percent", "amount", "date", "text"


@dataclass(frozen=True)
class FigureDef:
    key: str
    name: str  # Chinese name, also the narrative placeholder {name}
    unit: str  # printed after the value
    kind: str = COUNT
    metric: str | None = None  # the snapshot metric that computes it, when the platform does
    metric_part: str = "value"  # value, or numerator of a rate (网上办理部门数)


FIGURES: list[FigureDef] = [
    # report identity (both forms)
    FigureDef("report_period_start", "统计期限起", "", DATE),
    FigureDef("report_period_end", "统计期限止", "", DATE),
    FigureDef("published_on", "发布日期", "", DATE),
    FigureDef("compiled_by", "编制单位", "", TEXT),
    FigureDef("published_at", "发布网站", "", TEXT),
    FigureDef("contact_unit", "联系单位", "", TEXT),
    FigureDef("contact_phone", "联系电话", "", TEXT),
    # 2021 template, 六、其他需要报告的事项
    FigureDef("info_processing_fee", "信息处理费", "元", AMOUNT),
    # the 2018 report's 概述
    FigureDef("towns_and_streets", "镇街数", "个"),
    FigureDef("key_tasks", "政务公开重点工作", "项"),
    FigureDef("leaflets_handed_out", "宣传手册", "份"),
    FigureDef("citizens_consulted", "现场咨询群众", "人次"),
    FigureDef("hotline_12345_valid_requests", "12345热线有效诉求", "件"),
    FigureDef("hotline_12345_provincial_orders", "省12345工单", "件"),
    FigureDef("public_opinion_items", "网络舆情", "条"),
    FigureDef("portal_special_topics", "政务专题", "个"),
    FigureDef("policy_qa_categories", "简明问答类别", "类"),
    FigureDef("policy_qa_questions", "简明问答问题", "个"),
    # government services (the platform's own figures where it has them)
    FigureDef("featured_service_apps", "特色服务应用", "项"),
    FigureDef("no_contact_categories", "不见面审批事项类别", "大类"),
    FigureDef("no_contact_rate", "不见面率", "%", PERCENT, metric="no_contact_rate"),
    FigureDef("scenario_bundles", "套餐式场景服务", "个", metric="bundles_published"),
    FigureDef(
        "departments_online", "网上办理部门数", "个", metric="departments_online", metric_part="numerator"
    ),
    # 累计办件: the platform counts cases per year (办件总量), not since the start, so this stays entered.
    FigureDef("cases_handled", "累计办件", "条", metric="cases_received_cumulative"),
    FigureDef("licence_records_pushed", "累计推送证照数据", "条", metric="licences_pushed_cumulative"),
    FigureDef(
        "elicence_department_coverage", "电子证照部门覆盖率", "%", PERCENT, "licence_department_coverage"
    ),
    FigureDef("town_public_service_items", "镇级公共服务事项", "项", metric="items_claimed_level_5"),
    FigureDef("village_public_service_items", "村级公共服务事项", "项", metric="items_claimed_level_6"),
    FigureDef("electronic_supervision_anomalies", "电子监察异常办件", "件"),
    # 主动公开, 依申请公开, 复议诉讼, 问题和措施
    FigureDef("portal_items_published", "门户网站发布政务信息", "条"),
    FigureDef("disclosure_platform_items", "信息公开平台发布信息", "条"),
    FigureDef("items_sent_to_city_portal", "向市政府网站报送信息", "条"),
    FigureDef("items_adopted_by_city_portal", "被市政府网站采用信息", "条"),
    FigureDef("applications_received", "收到公开申请", "件"),
    FigureDef("administrative_reviews", "行政复议案件", "件"),
    FigureDef("administrative_litigation_lost", "被纠错或败诉案件", "件"),
    FigureDef("problems_listed", "存在问题数", "个"),
    FigureDef("improvements_listed", "改进措施数", "项"),
]
BY_KEY = {f.key: f for f in FIGURES}
BY_NAME = {f.name: f for f in FIGURES}

# The CSV's units are English words; “(at least)” and “(more than)” mark a lower bound.
_LOWER_BOUND = re.compile(r"\((at least|more than)\)")
CSV_COLUMNS = ("key", "value", "unit", "scope", "section", "note")


@dataclass(frozen=True)
class Figure:
    """One entered figure as frozen into a snapshot (``as_dict``) and printed."""

    key: str
    value: str
    unit: str
    lower_bound: bool

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "lower_bound": self.lower_bound}


_PLAIN_NUMBER = re.compile(r"[0-9]{1,30}(\.[0-9]+)?", re.ASCII)
# Larger than any count a district reports (the province has about 10^8 people); the stored text stays
# far inside its column.
MAX_FIGURE = Decimal(10) ** 15


def parse_value(definition: FigureDef, raw: str) -> str:
    """The canonical text of a value of this figure's kind; ValueError with a Chinese reason."""
    text = raw.strip()
    if not text:
        raise ValueError("数值不能为空")
    if definition.kind == TEXT:
        if len(text) > 200:
            raise ValueError("文字不能超过200字")
        return text
    if definition.kind == DATE:
        try:
            return parse_iso_date(text).isoformat()
        except ValueError:
            raise ValueError(f"“{text}”不是日期（YYYY-MM-DD）") from None
    plain = text.replace(",", "")
    # Plain decimal digits only: Decimal also reads 1e400, NaN, 1_000 and other scripts' digits, which
    # no report figure is written as (and 1e400 overflowed the stored text into a 500).
    if plain.startswith("-") and _PLAIN_NUMBER.fullmatch(plain[1:]):
        raise ValueError("数值不能为负数")
    if not _PLAIN_NUMBER.fullmatch(plain):
        raise ValueError(f"“{text}”不是数字（只写阿拉伯数字，可带小数点）")
    number = Decimal(plain)
    if number >= MAX_FIGURE:
        raise ValueError("数值过大")
    if definition.kind == COUNT:
        if number != number.to_integral_value():
            raise ValueError(f"“{text}”应为整数")
        return str(int(number))
    if definition.kind == PERCENT and number > 100:
        raise ValueError("百分比不能超过100")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError("最多两位小数")
    return format(number.normalize(), "f")


def format_value(
    definition: FigureDef, value: str, lower_bound: bool = False, unit: str | None = None
) -> str:
    """Printed form: “7万余条” for a lower bound of 70000, “100%”, “13616件”, “2019年2月25日”."""
    unit = definition.unit if unit is None else unit
    if definition.kind == TEXT:
        return value
    if definition.kind == DATE:
        day = date.fromisoformat(value)
        return f"{day.year}年{day.month}月{day.day}日"
    number = Decimal(value)
    if lower_bound and number >= 10000 and number % 10000 == 0:
        return f"{int(number // 10000)}万余{unit}"
    text = format(number.normalize(), "f") if definition.kind != COUNT else str(int(number))
    return f"{text}余{unit}" if lower_bound else f"{text}{unit}"


def entered_figures(session: Session, year: int) -> dict[str, dict[str, Any]]:
    """The year's entered figures by key, in the shape frozen into a snapshot."""
    rows = session.exec(select(EnteredFigure).where(col(EnteredFigure.year) == year)).all()
    return {
        r.key: Figure(r.key, r.value, r.unit, r.lower_bound).as_dict()
        for r in sorted(rows, key=lambda r: r.key)
    }


def save_figure(
    session: Session,
    actor: Principal,
    *,
    year: int,
    key: str,
    value: str,
    unit: str | None = None,
    lower_bound: bool = False,
    note: str = "",
) -> EnteredFigure:
    """Store one entered figure (admin only); Invalid names the field."""
    require_report_admin(actor)
    check_year(year)
    definition = BY_KEY.get(key)
    if definition is None:
        raise Invalid(f"不认识的填报项：{key}", {"key": [f"不认识的填报项：{key}"]})
    try:
        clean = parse_value(definition, value)
    except ValueError as exc:
        raise Invalid(f"{definition.name}：{exc}", {"value": [str(exc)]}) from None
    unit = (definition.unit if unit is None else unit).strip()
    if len(unit) > 20:
        raise Invalid("单位不能超过20字", {"unit": ["单位不能超过20字"]})
    if lower_bound and definition.kind not in (COUNT, AMOUNT):
        raise Invalid(f"{definition.name}不能标为“余/多”", {"lower_bound": ["只有计数和金额可以标为“余/多”"]})
    row = session.exec(
        select(EnteredFigure).where(col(EnteredFigure.year) == year, col(EnteredFigure.key) == key)
    ).first()
    new = {"value": clean, "unit": unit, "lower_bound": lower_bound, "note": note[:200]}
    old = None
    if row is None:
        row = EnteredFigure(
            year=year,
            key=key,
            value=clean,
            unit=unit,
            lower_bound=lower_bound,
            note=note[:200],
            updated_by=actor.name,
        )
        session.add(row)
    else:
        old = {"value": row.value, "unit": row.unit, "lower_bound": row.lower_bound, "note": row.note}
        row.value, row.unit, row.lower_bound, row.note = clean, unit, lower_bound, note[:200]
        row.updated_by, row.updated_at = actor.name, utcnow()
    session.flush()
    record(
        session,
        actor=actor,
        action="reports.save_entered_figure",
        entity_type="entered_figure",
        entity_id=f"{year}:{key}",
        old=old,
        new=new,
    )
    return row


def read_figures_csv(text: str) -> list[tuple[int, dict[str, str]]]:
    """Rows of a figures file with their line numbers; Invalid on wrong columns (missing or named twice)
    or on any line that cannot be read, naming it."""
    rows = text_records(text)
    first = next(rows, None)
    header = [h.strip() for h in first.values] if first is not None else []
    missing = [c for c in ("key", "value", "unit") if c not in header]
    if missing:
        raise Invalid(
            f"第1行：缺少列 {', '.join(missing)}（应为 {','.join(CSV_COLUMNS)}）",
            {"1": [f"缺少列 {', '.join(missing)}"]},
        )
    twice = header_problems(header, ())
    if twice:
        raise Invalid(f"第1行：{'；'.join(twice)}", {"1": twice})
    return [(line, row) for line, row in table_rows(rows, header, "填报数字文件") if any(row.values())]


def load_figures_csv(session: Session, actor: Principal, *, year: int, text: str) -> int:
    """Enter every figure of a file (the format of data/gaogang_2018_report_figures.csv) for ``year``.

    All lines are checked first: an unknown key, a value of the wrong kind, a duplicate key or a
    period outside the year refuses the whole file with each line and reason, and nothing is written.
    Returns the number of figures stored.
    """
    rows = read_figures_csv(text)
    errors: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    parsed: list[tuple[str, str, bool, str]] = []
    for line, row in rows:
        key = row.get("key", "").strip()
        definition = BY_KEY.get(key)
        problems: list[str] = []
        if definition is None:
            problems.append(f"不认识的填报项“{key}”")
        elif key in seen:
            problems.append(f"填报项“{key}”与第{seen[key]}行重复")
        else:
            seen[key] = line
            try:
                value = parse_value(definition, row.get("value", ""))
            except ValueError as exc:
                problems.append(f"{definition.name}（{key}）：{exc}")
            else:
                if key.startswith("report_period_") and date.fromisoformat(value).year != year:
                    problems.append(f"统计期限 {value} 不在 {year} 年内")
                lower = bool(_LOWER_BOUND.search(row.get("unit", "")))
                parsed.append((key, value, lower, row.get("note", "").strip()))
        if problems:
            errors[f"第{line}行"] = problems
    if errors:
        raise Invalid(f"文件有 {len(errors)} 行有误，未导入任何数字", errors)
    for key, value, lower, note in parsed:
        save_figure(session, actor, year=year, key=key, value=value, lower_bound=lower, note=note)
    return len(parsed)


def save_figures(
    session: Session, actor: Principal, *, year: int, values: dict[str, tuple[str, bool]]
) -> int:
    """The entered-figures form: every (value, lower bound) by key, all checked before any is stored.

    A blank value removes the figure (unknown again). Invalid names each key with its problem.
    """
    require_report_admin(actor)
    check_year(year)
    errors: dict[str, list[str]] = {}
    clean: dict[str, tuple[str | None, bool]] = {}
    for key, (raw, lower) in values.items():
        definition = BY_KEY.get(key)
        if definition is None:
            errors[key] = [f"不认识的填报项：{key}"]
            continue
        if not raw.strip():
            clean[key] = (None, False)
            continue
        try:
            clean[key] = (parse_value(definition, raw), lower)
        except ValueError as exc:
            errors[key] = [str(exc)]
            continue
        if lower and definition.kind not in (COUNT, AMOUNT):
            errors[key] = ["只有计数和金额可以标为“余/多”"]
    if errors:
        raise Invalid(f"{len(errors)} 项填报有误，均未保存", errors)
    existing = {
        r.key: r for r in session.exec(select(EnteredFigure).where(col(EnteredFigure.year) == year)).all()
    }
    changed = 0
    for key, (value, lower) in clean.items():
        row = existing.get(key)
        if value is None:
            if row is not None:
                session.delete(row)
                session.flush()
                record(
                    session,
                    actor=actor,
                    action="reports.delete_entered_figure",
                    entity_type="entered_figure",
                    entity_id=f"{year}:{key}",
                    old={"value": row.value, "unit": row.unit, "lower_bound": row.lower_bound},
                )
                changed += 1
            continue
        if row is not None and (row.value, row.lower_bound) == (value, lower):
            continue
        save_figure(
            session, actor, year=year, key=key, value=value, lower_bound=lower, note=row.note if row else ""
        )
        changed += 1
    return changed
