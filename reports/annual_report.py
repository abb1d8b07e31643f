"""The annual report (政府信息公开工作年度报告, 政务服务 part) built from a frozen year-end snapshot.

One ``Report`` object (snapshot payload, hash, differences against the live data) renders to
Markdown, standalone HTML and DOCX. Figures come only from the snapshot, so every run for the same
snapshot prints the same tables. The published document holds only what the template holds; a figure
without data prints “信息待补充” instead of a zero, and the reasons, the figures changed since the
snapshot, the hash and the metric definitions go to a separate internal appendix for administrators.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import Session

from core.errors import NotFound
from core.types import CHINA_TZ
from reports import charts, metrics, snapshot, template_tables
from reports.models import Snapshot

TEMPLATES = Path(__file__).parent / "templates"
# Official documents are set in a serif (宋体-like) face. Noto Serif CJK SC is the serif CJK family
# Debian ships in fonts-noto-cjk (scripts/test-services.sh installs it); Word on a machine without it
# falls back to its own 宋体 through the East-Asian font slot.
FONT = "Noto Serif CJK SC"
DISTRICT = "泰州市高港区"


@dataclass
class Report:
    year: int
    hash: str
    snapshot_id: int
    created_at: datetime
    definitions_version: str
    payload: dict[str, Any]
    differences: list[snapshot.Difference] = field(default_factory=list)
    _charts: dict[str, bytes] = field(default_factory=dict, repr=False)

    def chart(self, name: str) -> bytes:
        """A chart of the frozen figures, drawn once per report object (every format reuses it)."""
        if name not in self._charts:
            self._charts[name] = chart_png(name, self.metrics)
        return self._charts[name]

    @property
    def metrics(self) -> dict[str, Any]:
        m: dict[str, Any] = self.payload["metrics"]
        return m

    @property
    def version_note(self) -> str | None:
        if self.definitions_version == metrics.DEFINITIONS_VERSION:
            return None
        return (
            f"快照按指标定义版本 {self.definitions_version} 计算，现行版本为 {metrics.DEFINITIONS_VERSION}；"
            "下列变动可能来自口径调整。"
        )

    @property
    def as_of_label(self) -> str:
        """The statistical moment in words: year end is “截至2025年12月31日24时（北京时间）”."""
        when = datetime.fromisoformat(self.payload["as_of"]).astimezone(CHINA_TZ)
        if (when.hour, when.minute, when.second) == (23, 59, 59):
            return f"截至{when.year}年{when.month}月{when.day}日24时（北京时间）"
        return f"截至{when:%Y年%m月%d日%H时%M分}（北京时间）"

    @property
    def preliminary(self) -> bool:
        """A snapshot of the running year (初步快照), frozen before the year ended."""
        return bool(self.payload.get("preliminary"))

    @property
    def as_of_line(self) -> str:
        line = f"统计时点：{self.as_of_label}"
        return line + "。年度尚未结束，以上为初步统计数据。" if self.preliminary else line

    @property
    def title(self) -> str:
        return f"{DISTRICT}{self.year}年政府信息公开工作年度报告（政务服务部分）"


def build_report(session: Session, year: int, with_differences: bool = True) -> Report:
    snap: Snapshot | None = snapshot.latest_snapshot(session, year)
    if snap is None:
        raise NotFound(f"{year} 年还没有冻结的年末快照，请先冻结快照", {"year": ["没有年末快照"]})
    assert snap.id is not None  # noqa: S101 (a stored row)
    diffs = snapshot.live_differences(session, snap) if with_differences else []
    return Report(
        year=snap.year,
        hash=snap.hash,
        snapshot_id=snap.id,
        created_at=snap.created_at,
        definitions_version=snap.definitions_version,
        payload=snap.payload,
        differences=diffs,
    )


# ---- figures as text -----------------------------------------------------------------------------


# What the published document prints for a figure without data; the reason goes to the internal appendix.
PENDING = "（信息待补充）"


def pct(result: dict[str, Any]) -> str:
    if result.get("missing") or not result["denominator"]:
        return PENDING
    value = 100 * result["numerator"] / result["denominator"]
    return f"{value:.1f}%（{result['numerator']}/{result['denominator']}）"


def num(result: dict[str, Any], unit: str = "") -> str:
    if result.get("missing"):
        return PENDING
    return f"{result['value']:,}{unit}"


def narrative(report: Report) -> list[str]:
    """The 政务服务 paragraphs of 总体情况, modelled on the district's 2018 report, with computed figures."""
    m = report.metrics
    types = "；".join(f"{metrics.TYPE_LABELS[t]}{pct(m[f'no_contact_rate_{t}'])}" for t in metrics.SIX_TYPES)
    dept = m["departments_online"]
    dept_text = (
        PENDING
        if dept.get("missing")
        else f"{dept['numerator']}个部门开展网上审批（共{dept['denominator']}个部门有办件）"
    )
    paragraphs = [
        f"深入推进“不见面审批”改革。截至{report.year}年底，全区六大类审批事项不见面率{pct(m['no_contact_rate'])}，"
        f"其中{types}。依申请事项全程网办率{pct(m['full_online_rate'])}，最多跑一次率{pct(m['at_most_once_rate'])}，"
        f"网上可办率{pct(m['online_available_rate'])}。",
        f"网上办理持续深化。全年{dept_text}，办件总量{num(m['cases_received'], '件')}，"
        f"网办件占比{pct(m['online_case_share'])}，按时办结率{pct(m['on_time_rate'])}。",
        f"电子证照全面归集。截至年底推送市级电子证照库的证照记录{num(m['licences_pushed'], '条')}，"
        f"电子证照部门覆盖率{pct(m['licence_department_coverage'])}，"
        f"在用证照类型{num(m['licence_types'], '类')}。",
        f"政务服务向基层延伸。镇（街道）级认领事项{num(m['items_claimed_level_5'], '项')}、"
        f"村（社区）级认领事项{num(m['items_claimed_level_6'], '项')}；"
        f"镇级认领覆盖率{pct(m['claim_coverage_level_5'])}，"
        f"村级认领覆盖率{pct(m['claim_coverage_level_6'])}。三级四同偏差{pct(m['drift_rate'])}。",
        f"推出套餐式场景服务（“一件事”）{num(m['bundles_published'], '个')}，"
        "实现一次告知、一表申请、一窗受理。",
    ]
    return paragraphs


def missing_figures(report: Report) -> list[str]:
    out = [f"{r['label']}：{r['missing']}" for r in report.metrics.values() if r.get("missing")]
    for table, values in report.payload["template_tables"].items():
        if values is None:
            out.append(f"统计表{template_tables.TABLE_TITLES[table]}：管理员尚未填报")
    return out


def table_rows(table: str, values: dict[str, Any] | None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a template table as text; blank when not entered."""

    def cell(key: str) -> str:
        if values is None:
            return "—"
        v = values.get(key)
        return "" if v is None else str(v)

    if table == "2":
        header = ["条款", "项目", "指标", "数值"]
        rows = [
            [art, name, label, cell(f"{r}|{c}")]
            for r, art, name, cols in template_tables.TABLE2_ROWS
            for c, label in cols
        ]
        return header, rows
    if table == "3":
        header = ["项目"] + [label for _c, label in template_tables.TABLE3_COLUMNS]
        rows = [
            [label] + [cell(f"{r}|{c}") for c, _l in template_tables.TABLE3_COLUMNS]
            for r, label in template_tables.TABLE3_ROWS
        ]
        return header, rows
    header = ["类别"] + [label for _c, label in template_tables.TABLE4_COLUMNS]
    rows = [
        [label] + [cell(f"{g}|{c}") for c, _l in template_tables.TABLE4_COLUMNS]
        for g, label in template_tables.TABLE4_GROUPS
    ]
    return header, rows


def metric_table(result: dict[str, Any], limit: int = 40) -> tuple[list[str], list[list[str]]]:
    header = ["名称", *result["columns"]]
    rows = [[r["label"], *["" if v is None else str(v) for v in r["values"]]] for r in result["rows"][:limit]]
    return header, rows


CHART_SPECS: list[tuple[str, str]] = [
    ("no_contact", "六大类事项不见面率"),
    ("towns", "各镇（街道）事项认领"),
    ("departments", "区级部门事项认领（前20）"),
    ("monthly", "逐月办件量"),
    ("sync", "电子证照同步状态（按月）"),
]


def chart_png(name: str, m: dict[str, Any]) -> bytes:
    if name == "no_contact":
        return charts.rates_chart(
            [m["no_contact_rate"]]
            + [m[f"no_contact_rate_{t}"] for t in metrics.SIX_TYPES]
            + [m["full_online_rate"], m["at_most_once_rate"], m["online_available_rate"]],
            "不见面率与网办指标",
        )
    if name == "towns":
        return charts.bar_table(m["entries_by_town"], columns=[0, 2])
    if name == "departments":
        return charts.bar_table(m["entries_by_department"], columns=[0, 2])
    if name == "monthly":
        return charts.monthly_chart(m["cases_by_month"])
    if name == "sync":
        return charts.stacked_chart(m["sync_by_month"])
    raise NotFound("没有这个图表")


def appendix(report: Report) -> list[tuple[str, str]]:
    return [(d.label, d.formula) for d in metrics.DEFINITIONS]


# ---- Markdown ----------------------------------------------------------------------------------------


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(report: Report) -> str:
    """The published report: only what the template holds (see ``render_internal_markdown``)."""
    m = report.metrics
    out = [f"# {report.title}", "", report.as_of_line, "", "## 一、总体情况（政务服务）", ""]
    out += [p + "\n" for p in narrative(report)]
    for table in ("2", "3", "4"):
        out += [f"## {template_tables.TABLE_TITLES[table]}", ""]
        out += [_md_table(*table_rows(table, report.payload["template_tables"].get(table))), ""]
    out += ["## 附表：分级认领与办件", ""]
    for key in ("entries_by_town", "cases_by_month", "licence_events"):
        out += [f"### {m[key]['label']}", ""]
        out += [PENDING, ""] if m[key].get("missing") else [_md_table(*metric_table(m[key])), ""]
    return "\n".join(out).rstrip("\n") + "\n"


def render_internal_markdown(report: Report) -> str:
    """The internal appendix for administrators: snapshot identity, missing data, changes, definitions."""
    out = [
        f"# {report.title}：内部附录（不公开）",
        "",
        f"{report.as_of_line}；快照编号 {report.snapshot_id}；"
        f"指标定义版本 {report.definitions_version}；快照哈希（SHA-256）`{report.hash}`。",
        "",
        "## 缺少的数据",
        "",
    ]
    missing = missing_figures(report)
    out += [f"- {x}" for x in missing] if missing else ["无"]
    out += ["", "## 快照后的数据变动", ""]
    if report.version_note:
        out += [report.version_note, ""]
    if report.differences:
        out += [
            _md_table(
                ["指标", "快照值", "现值"],
                [[d.label, str(d.frozen), str(d.current)] for d in report.differences],
            )
        ]
    else:
        out += ["无：实时数据与快照一致。"]
    out += ["", "## 指标定义", ""]
    out += [f"- **{label}**：{formula}" for label, formula in appendix(report)]
    return "\n".join(out) + "\n"


# ---- HTML --------------------------------------------------------------------------------------------

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def report_context(report: Report, chart_src: dict[str, str]) -> dict[str, Any]:
    m = report.metrics
    return {
        "report": report,
        "paragraphs": narrative(report),
        "tables": [
            (
                template_tables.TABLE_TITLES[t],
                report.payload["template_tables"].get(t) is None,
                *table_rows(t, report.payload["template_tables"].get(t)),
            )
            for t in ("2", "3", "4")
        ],
        "annex": [
            (m[k]["label"], m[k].get("missing"), *metric_table(m[k]))
            for k in ("entries_by_town", "cases_by_month", "licence_events")
        ],
        "charts": [(title, chart_src[name]) for name, title in CHART_SPECS],
        "pending": PENDING,
    }


def internal_context(report: Report) -> dict[str, Any]:
    return {"report": report, "missing": missing_figures(report), "definitions": appendix(report)}


def render_html(report: Report) -> str:
    """A standalone HTML document; charts are embedded as data: URIs (the CSP allows images)."""
    srcs = {
        name: "data:image/png;base64," + base64.b64encode(report.chart(name)).decode()
        for name, _t in CHART_SPECS
    }
    return _env.get_template("reports/report_document.html").render(**report_context(report, srcs))


def render_internal_html(report: Report) -> str:
    """The internal appendix as a standalone HTML document (administrators only)."""
    return _env.get_template("reports/report_document.html").render(
        **internal_context(report),
        body_template="reports/_internal_body.html",
        document_title=f"{report.title}：内部附录",
    )


# ---- DOCX ---------------------------------------------------------------------------------------------


# A4 with the margins of GB/T 9704 (党政机关公文格式): top 37 mm, bottom 35 mm, left 28 mm, right 26 mm.
PAGE_MM = (210, 297)
MARGINS_MM = {"top": 37, "bottom": 35, "left": 28, "right": 26}
TEXT_WIDTH_MM = PAGE_MM[0] - MARGINS_MM["left"] - MARGINS_MM["right"]


def _set_fonts(element: Any, font: str) -> None:
    """Name ``font`` for Latin and East-Asian text alike, dropping the theme fonts that would win."""
    from docx.oxml.ns import qn

    rpr = element.get_or_add_rPr()
    rfonts = rpr.get_or_add_rFonts()
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        rfonts.attrib.pop(qn(attr), None)
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        rfonts.set(qn(attr), font)
    # Simplified Chinese as the East-Asian language, so renderers pick the SC glyph forms.
    lang = rpr.find(qn("w:lang"))
    if lang is None:
        from docx.oxml import OxmlElement

        lang = OxmlElement("w:lang")
        rpr.append(lang)
    lang.set(qn("w:eastAsia"), "zh-CN")


def _add_page_number(section: Any) -> None:
    """A centred “— PAGE —” footer, as page numbers are printed on official documents."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    para = section.footer.paragraphs[0]
    para.alignment = WD_ALIGN_PARAGRAPH.CENTER
    para.add_run("— ")
    for kind, text in (("begin", None), (None, " PAGE "), ("separate", None), (None, "1"), ("end", None)):
        run = para.add_run()
        if kind is not None:
            fld = OxmlElement("w:fldChar")
            fld.set(qn("w:fldCharType"), kind)
            run._r.append(fld)
        elif text == " PAGE ":
            instr = OxmlElement("w:instrText")
            instr.set(qn("xml:space"), "preserve")
            instr.text = text
            run._r.append(instr)
        else:
            run.text = text or ""
    para.add_run(" —")


def _fit_table(table: Any, widths_mm: list[float]) -> None:
    """Fixed column widths that add up to the text width, so no table runs past the margin."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Mm

    table.autofit = False
    tbl_pr = table._tbl.tblPr
    layout = OxmlElement("w:tblLayout")
    layout.set(qn("w:type"), "fixed")
    tbl_pr.append(layout)
    width = OxmlElement("w:tblW")
    width.set(qn("w:w"), str(int(Mm(sum(widths_mm)).twips)))
    width.set(qn("w:type"), "dxa")
    for old in tbl_pr.findall(qn("w:tblW")):
        tbl_pr.remove(old)
    tbl_pr.append(width)
    for i, column in enumerate(table.columns):
        column.width = Mm(widths_mm[i])
        for cell in column.cells:
            cell.width = Mm(widths_mm[i])


def column_widths(header: list[str], rows: list[list[str]], total_mm: float = TEXT_WIDTH_MM) -> list[float]:
    """Share ``total_mm`` among columns by their longest text (CJK counts double), each at least 10 mm."""

    def weight(text: str) -> int:
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)

    longest = [max(weight(r[i]) for r in [header, *rows]) for i in range(len(header))]
    capped = [min(max(w, 4), 40) for w in longest]
    floor = min(10.0, total_mm / len(header))
    spare = total_mm - floor * len(header)
    return [floor + spare * w / sum(capped) for w in capped]


def render_docx(report: Report) -> bytes:
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn
    from docx.shared import Mm, Pt, RGBColor

    doc = Document()
    for style_name in ("Normal", "Title", "Heading 1", "Heading 2", "Heading 3", "Table Grid"):
        style = doc.styles[style_name]
        _set_fonts(style.element, FONT)
        if style_name != "Normal" and style.font.color is not None:
            style.font.color.rgb = RGBColor(0, 0, 0)
    doc.styles["Normal"].font.size = Pt(12)
    doc.styles["Title"].font.size = Pt(20)
    title_ppr = doc.styles["Title"].element.pPr
    if title_ppr is not None:  # the default template underlines titles in blue; a 公文 title has no rule
        for border in title_ppr.findall(qn("w:pBdr")):
            title_ppr.remove(border)
    props = doc.core_properties
    props.title, props.author = report.title, "高港区政务服务平台"
    props.created = props.modified = report.created_at.replace(tzinfo=None)
    props.revision = 1
    for section in doc.sections:
        section.page_width, section.page_height = Mm(PAGE_MM[0]), Mm(PAGE_MM[1])
        section.top_margin, section.bottom_margin = Mm(MARGINS_MM["top"]), Mm(MARGINS_MM["bottom"])
        section.left_margin, section.right_margin = Mm(MARGINS_MM["left"]), Mm(MARGINS_MM["right"])
        _add_page_number(section)

    heading = doc.add_heading(report.title, level=0)
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    doc.add_paragraph(report.as_of_line)
    doc.add_heading("一、总体情况（政务服务）", level=1)
    for p in narrative(report):
        para = doc.add_paragraph(p)
        para.paragraph_format.first_line_indent = Pt(24)  # two characters at 12 pt

    def add_table(header: list[str], rows: list[list[str]], font_size: float = 8) -> None:
        table = doc.add_table(rows=1, cols=len(header))
        table.style = "Table Grid"
        for i, h in enumerate(header):
            table.rows[0].cells[i].text = h
        for row in rows:
            cells = table.add_row().cells
            for i, value in enumerate(row):
                cells[i].text = value
        for row in table.rows:
            for c in row.cells:
                for para in c.paragraphs:
                    for run in para.runs:
                        run.font.size = Pt(font_size)
        _fit_table(table, column_widths(header, rows))

    for t in ("2", "3", "4"):
        doc.add_heading(template_tables.TABLE_TITLES[t], level=1)
        add_table(*table_rows(t, report.payload["template_tables"].get(t)))

    doc.add_heading("图表", level=1)
    for name, title in CHART_SPECS:
        doc.add_paragraph(title)
        doc.add_picture(io.BytesIO(report.chart(name)), width=Mm(min(140, TEXT_WIDTH_MM)))

    doc.add_heading("附表：分级认领与办件", level=1)
    for key in ("entries_by_town", "cases_by_month", "licence_events"):
        result = report.metrics[key]
        doc.add_heading(result["label"], level=2)
        if result.get("missing"):
            doc.add_paragraph(PENDING)
        else:
            add_table(*metric_table(result))

    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
