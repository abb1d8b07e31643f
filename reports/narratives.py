"""The prose of the annual report: narrative blocks per year, their placeholders and their defaults.

Each report form (``form_for_year``) is a fixed sequence of parts; the parts that are prose are
narrative blocks an administrator edits per year (``report_narrative``). A block's text may hold
placeholders, ``{不见面率}``, filled when the report is built from the year's frozen snapshot: the
metrics, the template tables, the computed 行政许可 decisions and the entered figures frozen with it.
A placeholder without data prints “（信息待补充）” and is listed in the internal appendix. An unknown
placeholder, or a stray brace, is refused when the block is saved, naming it. A block nobody edited
reads its default text below, so a new year reads well before anyone touches it.

Forms: years up to 2018 are reported in the form of the 2008 regulation (the district's 2018 report:
preface, 一、概述, 二、具体情况分析, 三、存在问题及改进措施, statistics annex); from 2019 the revised
regulation's six sections (国办公开办函〔2021〕30号; the 2019 template's different 表二 columns are
not reproduced, see docs/reports.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from core.audit import record
from core.auth import Principal
from core.errors import Invalid, NotFound
from core.types import utcnow
from reports import entered_figures, metrics
from reports.models import NarrativeBlock
from reports.services import check_year, require_report_admin

FORM_2021 = "2021"
FORM_2008 = "2008"
LAST_2008_FORM_YEAR = 2018  # the 2019 report was the first under the revised regulation (in force 2019-05-15)

# What the published document prints for a figure without data; the reason goes to the internal appendix.
PENDING = "（信息待补充）"
MAX_TEXT = 10_000


def form_for_year(year: int) -> str:
    return FORM_2008 if year <= LAST_2008_FORM_YEAR else FORM_2021


# ---- figures as text ---------------------------------------------------------------------------------


def pct(result: dict[str, Any]) -> str:
    if result.get("missing") or not result["denominator"]:
        return PENDING
    value = 100 * result["numerator"] / result["denominator"]
    return f"{value:.1f}%（{result['numerator']}/{result['denominator']}）"


def num(result: dict[str, Any], unit: str = "") -> str:
    if result.get("missing"):
        return PENDING
    return f"{result['value']:,}{unit}"


@dataclass
class Sources:
    """What placeholders are filled from: one year's frozen snapshot payload."""

    year: int
    payload: dict[str, Any]

    @property
    def metrics(self) -> dict[str, Any]:
        m: dict[str, Any] = self.payload["metrics"]
        return m

    def table(self, table: str) -> dict[str, Any] | None:
        values: dict[str, Any] | None = self.payload.get("template_tables", {}).get(table)
        return values

    @property
    def entered(self) -> dict[str, dict[str, Any]]:
        e: dict[str, dict[str, Any]] = self.payload.get("entered_figures") or {}
        return e


def _metric_text(result: dict[str, Any] | None, unit: str = "") -> str | None:
    if result is None or result.get("missing"):
        return None
    if result["type"] == "rate":
        return None if not result["denominator"] else pct(result)
    return f"{result['value']:,}{unit}"


@dataclass(frozen=True)
class FigureChoice:
    """Which value a figure of ``entered_figures.FIGURES`` prints, and from where."""

    text: str | None
    source: str  # "computed", "entered" or "none"
    computed: str | None
    entered: str | None


def _empty_count(sources: Sources, definition: entered_figures.FigureDef) -> bool:
    result = sources.metrics.get(definition.metric or "") or {}
    return result.get("type") == "count" and result.get("value") == 0


def figure_choice(sources: Sources, definition: entered_figures.FigureDef) -> FigureChoice:
    """The computed figure when the snapshot has data for it, else the entered one (see the module).

    “Has data”: not missing, and not a bare zero count where an administrator entered a figure.
    """
    computed = None
    if definition.metric is not None:
        result = sources.metrics.get(definition.metric)
        if result is not None and not result.get("missing"):
            if definition.metric_part == "numerator" and result["type"] == "rate":
                computed = f"{result['numerator']}{definition.unit}"
            else:
                computed = _metric_text(result, "" if result["type"] == "rate" else definition.unit)
    entered = None
    stored = sources.entered.get(definition.key)
    if stored is not None:
        entered = entered_figures.format_value(
            definition, stored["value"], stored.get("lower_bound", False), stored.get("unit")
        )
    # A count of zero with nothing behind it (a year before the platform kept records) is no evidence
    # against the figure an administrator entered for that year; any other computed figure wins.
    if computed is not None and (entered is None or not _empty_count(sources, definition)):
        return FigureChoice(computed, "computed", computed, entered)
    if entered is not None:
        return FigureChoice(entered, "entered", computed, entered)
    return FigureChoice(None, "none", None, None)


def _cell(sources: Sources, table: str, key: str, unit: str) -> str | None:
    values = sources.table(table)
    if values is None or values.get(key) is None:
        return None
    return f"{values[key]}{unit}"


def _sum_cells(sources: Sources, table: str, keys: list[str], unit: str) -> str | None:
    values = sources.table(table)
    if values is None or any(values.get(k) is None for k in keys):
        return None
    return f"{sum(int(values[k]) for k in keys)}{unit}"


def _six_types(sources: Sources) -> str | None:
    parts = []
    for t in metrics.SIX_TYPES:
        text = _metric_text(sources.metrics.get(f"no_contact_rate_{t}"))
        if text is not None:
            parts.append(f"{metrics.TYPE_LABELS[t]}{text}")
    return "；".join(parts) or None


def _source_label(definition: entered_figures.FigureDef) -> str:
    if definition.metric is None:
        return "管理员填报"
    return "系统计算；无数据时用管理员填报值"


Resolver = Callable[[Sources], str | None]


def _metric(key: str, unit: str = "") -> Resolver:
    return lambda s: _metric_text(s.metrics.get(key), unit)


def _figure(definition: entered_figures.FigureDef) -> Resolver:
    return lambda s: figure_choice(s, definition).text


PLACEHOLDERS: dict[str, tuple[str, Resolver]] = {
    "年度": ("报告年度", lambda s: str(s.year)),
    "六类不见面率": ("六大类事项各自的不见面率", _six_types),
    **{
        f"不见面率·{metrics.TYPE_LABELS[t]}": (
            f"{metrics.TYPE_LABELS[t]}事项不见面率（分子/分母）",
            _metric(f"no_contact_rate_{t}"),
        )
        for t in metrics.SIX_TYPES
    },
    "全程网办率": ("依申请事项全程网办率（分子/分母）", _metric("full_online_rate")),
    "最多跑一次率": ("最多跑一次率（分子/分母）", _metric("at_most_once_rate")),
    "网上可办率": ("网上可办率（分子/分母）", _metric("online_available_rate")),
    "办件总量": ("统计年度办件总量", _metric("cases_received", "件")),
    "网办件占比": ("网上申报件占比（分子/分母）", _metric("online_case_share")),
    "按时办结率": ("按时办结率（分子/分母）", _metric("on_time_rate")),
    "网上办理部门占比": ("有网上办件的部门 / 有办件的部门", _metric("departments_online")),
    "在用证照类型": ("有证照记录的证照类型数", _metric("licence_types", "类")),
    "镇级认领覆盖率": ("镇（街道）级认领覆盖率", _metric("claim_coverage_level_5")),
    "村级认领覆盖率": ("村（社区）级认领覆盖率", _metric("claim_coverage_level_6")),
    "三级四同偏差": ("三级四同偏差（分子/分母）", _metric("drift_rate")),
    "规章制发件数": ("表二 规章·本年制发件数", lambda s: _cell(s, "2", "20.1|made", "件")),
    "规章现行有效件数": ("表二 规章·现行有效件数", lambda s: _cell(s, "2", "20.1|current", "件")),
    "规范性文件制发件数": ("表二 行政规范性文件·本年制发件数", lambda s: _cell(s, "2", "20.1n|made", "件")),
    "规范性文件废止件数": (
        "表二 行政规范性文件·本年废止件数",
        lambda s: _cell(s, "2", "20.1n|repealed", "件"),
    ),
    "规范性文件现行有效件数": (
        "表二 行政规范性文件·现行有效件数",
        lambda s: _cell(s, "2", "20.1n|current", "件"),
    ),
    "行政许可决定数": ("表二 行政许可·本年处理决定数量", lambda s: _cell(s, "2", "20.5|decisions", "件")),
    "行政处罚决定数": ("表二 行政处罚·本年处理决定数量", lambda s: _cell(s, "2", "20.6a|decisions", "件")),
    "本年新收申请": ("表三 一、本年新收·总计", lambda s: _cell(s, "3", "1|total", "件")),
    "上年结转申请": ("表三 二、上年结转·总计", lambda s: _cell(s, "3", "2|total", "件")),
    "办结申请": ("表三 三（七）总计", lambda s: _cell(s, "3", "3.7|total", "件")),
    "予以公开申请": ("表三 三（一）予以公开·总计", lambda s: _cell(s, "3", "3.1|total", "件")),
    "结转下年度申请": ("表三 四、结转下年度继续办理·总计", lambda s: _cell(s, "3", "4|total", "件")),
    "行政复议总计": ("表四 行政复议·总计", lambda s: _cell(s, "4", "review|total", "件")),
    "行政诉讼总计": (
        "表四 行政诉讼（未经复议直接起诉与复议后起诉）·总计",
        lambda s: _sum_cells(s, "4", ["direct|total", "after|total"], "件"),
    ),
    **{f.name: (f"{f.name}（{_source_label(f)}）", _figure(f)) for f in entered_figures.FIGURES},
}


# ---- the blocks of each form ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockDef:
    key: str
    title: str  # where it goes in the report, for the editing page
    default: str


_PREFACE_2021 = (
    "本报告根据《中华人民共和国政府信息公开条例》（以下简称《条例》）和《中华人民共和国政府信息公开工作"
    "年度报告格式》（国办公开办函〔2021〕30号）要求编制，由总体情况，主动公开政府信息情况，收到和处理"
    "政府信息公开申请情况，政府信息公开行政复议、行政诉讼情况，存在的主要问题及改进情况，其他需要报告的"
    "事项六部分组成。本报告所列数据的统计期限自{年度}年1月1日起至{年度}年12月31日止。本报告电子版可在"
    "{发布网站}查阅或下载。如对本报告有疑问，请与{联系单位}联系（电话：{联系电话}）。"
)
_OVERALL_2021 = "\n\n".join(
    [
        "深入推进“不见面审批”改革。截至{年度}年底，全区六大类审批事项不见面率{不见面率}，其中{六类不见面率}。"
        "依申请事项全程网办率{全程网办率}，最多跑一次率{最多跑一次率}，网上可办率{网上可办率}。",
        "网上办理持续深化。全年{网上办理部门数}部门开展网上审批（有网上办件的部门占有办件部门的"
        "{网上办理部门占比}），办件总量{办件总量}，网办件占比{网办件占比}，按时办结率{按时办结率}。",
        "电子证照全面归集。截至年底推送市级电子证照库的证照记录{累计推送证照数据}，"
        "电子证照部门覆盖率{电子证照部门覆盖率}，在用证照类型{在用证照类型}。",
        "政务服务向基层延伸。镇（街道）级认领事项{镇级公共服务事项}、村（社区）级认领事项{村级公共服务事项}；"
        "镇级认领覆盖率{镇级认领覆盖率}，村级认领覆盖率{村级认领覆盖率}。三级四同偏差{三级四同偏差}。",
        "推出套餐式场景服务（“一件事”）{套餐式场景服务}，实现一次告知、一表申请、一窗受理。",
    ]
)
BLOCKS: dict[str, list[BlockDef]] = {
    FORM_2021: [
        BlockDef("preface", "前言", _PREFACE_2021),
        BlockDef("overall", "一、总体情况", _OVERALL_2021),
        BlockDef(
            "proactive",
            "二、主动公开政府信息情况（表前说明）",
            "本年度制发行政规范性文件{规范性文件制发件数}，废止{规范性文件废止件数}，现行有效{规范性文件现行有效件数}；"
            "作出行政许可决定{行政许可决定数}。具体情况见下表。",
        ),
        BlockDef(
            "applications",
            "三、收到和处理政府信息公开申请情况（表前说明）",
            "本年度新收政府信息公开申请{本年新收申请}，上年结转{上年结转申请}；办结{办结申请}，其中予以公开"
            "{予以公开申请}；结转下年度继续办理{结转下年度申请}。具体情况见下表。",
        ),
        BlockDef(
            "reviews",
            "四、政府信息公开行政复议、行政诉讼情况（表前说明）",
            "本年度因政府信息公开引起行政复议{行政复议总计}、行政诉讼{行政诉讼总计}。具体情况见下表。",
        ),
        BlockDef(
            "problems",
            "五、存在的主要问题及改进情况",
            "（一）存在的主要问题。政务服务事项要素的填报仍不完整，部分指标只能按已填报的事项计算；"
            "基层公开的标准化、规范化水平有待提升。\n\n"
            "（二）改进情况。督促各部门补齐事项要素，按月核对办件数据，推动公开标准目录向镇（街道）、"
            "村（社区）延伸。",
        ),
        BlockDef(
            "other",
            "六、其他需要报告的事项",
            "本年度依据《政府信息公开信息处理费管理办法》收取信息处理费{信息处理费}。无其他需要报告的事项。",
        ),
    ],
    FORM_2008: [
        BlockDef(
            "preface",
            "前言",
            "根据《中华人民共和国政府信息公开条例》（以下简称《条例》）规定，由{编制单位}编制本报告。"
            "全文包括概述、具体情况分析、存在问题及改进措施和附表。本报告所列数据的统计期限自{统计期限起}起至"
            "{统计期限止}止。本报告于{发布日期}在区政府门户网站公开。如对本报告有任何疑问，请与{联系单位}联系"
            "（电话：{联系电话}）。",
        ),
        BlockDef(
            "overview_org",
            "一、概述 （一）组织领导和工作机制",
            "全区{镇街数}镇（街道）和区各部门按照《条例》要求落实政府信息公开工作，"
            "年内确定政务公开重点工作{政务公开重点工作}并逐项明确责任单位。开展《条例》宣传，发放宣传手册"
            "{宣传手册}，现场解答群众咨询{现场咨询群众}。",
        ),
        BlockDef(
            "overview_proactive",
            "一、概述 （二）主动公开和回应关切",
            "12345政府公共服务热线全年受理有效诉求{12345热线有效诉求}，办理省12345工单{省12345工单}；"
            "收集网络舆情{网络舆情}，全部交办处置。区政府门户网站开设政务专题{政务专题}，围绕民生热点编写"
            "简明问答{简明问答类别}、{简明问答问题}问题。",
        ),
        BlockDef(
            "overview_services",
            "一、概述 （三）政务服务",
            "深化“不见面审批”改革，行政许可等{不见面审批事项类别}事项不见面率{不见面率}。上线特色服务应用"
            "{特色服务应用}，推出套餐式特色场景服务{套餐式场景服务}。{网上办理部门数}部门审批业务在线办理，"
            "累计办件{累计办件}；累计向市级电子证照库推送证照数据{累计推送证照数据}，电子证照部门覆盖率"
            "{电子证照部门覆盖率}。镇（街道）级认领维护公共服务事项{镇级公共服务事项}，村（社区）级"
            "{村级公共服务事项}。电子监察全年发现异常办件{电子监察异常办件}。",
        ),
        BlockDef(
            "proactive",
            "二、具体情况分析 （一）主动公开",
            "全年通过区政府门户网站发布政务信息{门户网站发布政务信息}，通过政府信息公开平台公开信息"
            "{信息公开平台发布信息}；向市政府门户网站报送信息{向市政府网站报送信息}，被采用"
            "{被市政府网站采用信息}。",
        ),
        BlockDef(
            "on_request",
            "二、具体情况分析 （二）依申请公开",
            "全年共收到政府信息公开申请{收到公开申请}，均已按规定答复办结。",
        ),
        BlockDef(
            "reviews",
            "二、具体情况分析 （三）行政复议和行政诉讼",
            "全年发生涉及政府信息公开的行政复议案件{行政复议案件}，均已审结；被依法纠错或败诉的行政复议和"
            "行政诉讼案件{被纠错或败诉案件}。",
        ),
        BlockDef(
            "problems",
            "三、存在问题及改进措施 （一）存在问题",
            "政府信息公开工作仍存在{存在问题数}方面问题：一是部分单位公开内容不够全面及时；二是政策解读的"
            "形式较为单一；三是基层政务公开的标准化、规范化水平有待提升。",
        ),
        BlockDef(
            "measures",
            "三、存在问题及改进措施 （二）改进措施",
            "下一步重点做好{改进措施数}工作：一是完善公开目录，做到应公开尽公开；二是丰富解读形式，及时回应"
            "社会关切；三是推进基层政务公开标准化、规范化。",
        ),
    ],
}


def block_defs(year: int) -> list[BlockDef]:
    return BLOCKS[form_for_year(year)]


def block_def(year: int, key: str) -> BlockDef:
    for b in block_defs(year):
        if b.key == key:
            return b
    raise NotFound(f"{year} 年的报告没有“{key}”这一部分", {"key": [f"没有“{key}”这一部分"]})


# ---- placeholders -------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\{([^{}]*)\}")


def placeholders_in(text: str) -> list[str]:
    return _TOKEN.findall(text)


def check_text(text: str) -> list[str]:
    """Problems of a block's text, in Chinese: unknown placeholders, stray braces, length."""
    problems = []
    if len(text) > MAX_TEXT:
        problems.append(f"文字不能超过{MAX_TEXT}字")
    unknown = [name for name in placeholders_in(text) if name not in PLACEHOLDERS]
    if unknown:
        problems.append(
            "不认识的占位符："
            + "、".join(f"{{{n}}}" for n in dict.fromkeys(unknown))
            + "（可用的占位符见页面右侧列表）"
        )
    if "{" in _TOKEN.sub("", text) or "}" in _TOKEN.sub("", text):
        problems.append("花括号不成对：占位符写作 {名称}，正文中不能单独出现 { 或 }")
    return problems


def fill(text: str, sources: Sources) -> tuple[list[str], list[str]]:
    """The block's paragraphs with placeholders filled, and the placeholders that had no data."""
    missing: list[str] = []

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        value = PLACEHOLDERS[name][1](sources) if name in PLACEHOLDERS else None
        if value is None:
            missing.append(name)
            return PENDING
        return value

    paragraphs = [_TOKEN.sub(one, p).strip() for p in re.split(r"\n\s*\n|\n", text)]
    return [p for p in paragraphs if p], missing


# ---- storage ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    key: str
    title: str
    text: str
    default: str
    edited: bool
    updated_by: str | None


def blocks_for(session: Session, year: int) -> list[Block]:
    """Every block of the year's form, stored text or default, in report order."""
    rows = {
        r.key: r for r in session.exec(select(NarrativeBlock).where(col(NarrativeBlock.year) == year)).all()
    }
    out = []
    for b in block_defs(year):
        row = rows.get(b.key)
        out.append(
            Block(
                b.key,
                b.title,
                row.text if row else b.default,
                b.default,
                row is not None,
                row.updated_by if row else None,
            )
        )
    return out


def save_block(session: Session, actor: Principal, *, year: int, key: str, text: str) -> NarrativeBlock:
    """Store a block's text (admin only) after checking its placeholders; Invalid names each problem."""
    require_report_admin(actor)
    check_year(year)
    definition = block_def(year, key)
    text = text.replace("\r\n", "\n").strip()
    problems = check_text(text)
    if not text:
        problems.append("文字不能为空；要恢复默认文字请使用“恢复默认”")
    if problems:
        raise Invalid(f"“{definition.title}”未保存：{problems[0]}", {"text": problems})
    row = session.exec(
        select(NarrativeBlock).where(col(NarrativeBlock.year) == year, col(NarrativeBlock.key) == key)
    ).first()
    old = None
    if row is None:
        row = NarrativeBlock(year=year, key=key, text=text, updated_by=actor.name)
        session.add(row)
    else:
        old = {"text": row.text}
        row.text, row.updated_by, row.updated_at = text, actor.name, utcnow()
    session.flush()
    record(
        session,
        actor=actor,
        action="reports.save_narrative",
        entity_type="report_narrative",
        entity_id=f"{year}:{key}",
        old=old,
        new={"text": text},
    )
    return row


def reset_block(session: Session, actor: Principal, *, year: int, key: str) -> None:
    """Back to the default text (admin only): the stored text is removed."""
    require_report_admin(actor)
    check_year(year)
    block_def(year, key)
    row = session.exec(
        select(NarrativeBlock).where(col(NarrativeBlock.year) == year, col(NarrativeBlock.key) == key)
    ).first()
    if row is None:
        return
    old = {"text": row.text}
    session.delete(row)
    session.flush()
    record(
        session,
        actor=actor,
        action="reports.reset_narrative",
        entity_type="report_narrative",
        entity_id=f"{year}:{key}",
        old=old,
        new=None,
    )
