"""The annual report (政府信息公开工作年度报告) built from a frozen snapshot and the year's narrative blocks.

One ``Report`` object (snapshot payload, hash, differences against the live data, narrative blocks,
cross-year warnings) gives one ``report_document.Document`` in the form in force for its year
(reports.narratives.form_for_year), rendered to Markdown, standalone HTML and DOCX. Figures come only
from the snapshot, so every run for the same snapshot and text prints the same document. The published
document holds only what the template holds; a figure without data prints “信息待补充” instead of a
zero, and the reasons, the figures changed since the snapshot, the cross-year warnings, which figures
were entered by hand, the hash and the metric definitions go to a separate internal appendix.
"""

from __future__ import annotations

import base64
import html
import io
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import Session

from core.errors import NotFound
from core.types import CHINA_TZ
from reports import (
    charts,
    cross_year,
    entered_figures,
    metrics,
    narratives,
    report_document,
    snapshot,
    template_tables,
)
from reports.models import Snapshot
from reports.narratives import PENDING, Sources, num, pct
from reports.report_document import CHART_SPECS, Chart, Document, Heading, Para, Table

__all__ = ["CHART_SPECS", "PENDING", "Report", "build_report", "num", "pct"]

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
    blocks: list[narratives.Block] = field(default_factory=list)
    cross_year: list[cross_year.Warning_] = field(default_factory=list)
    _charts: dict[str, bytes] = field(default_factory=dict, repr=False)
    _document: Document | None = field(default=None, repr=False)

    def chart(self, name: str) -> bytes:
        """A chart of the frozen figures, drawn once per report object (every format reuses it)."""
        if name not in self._charts:
            self._charts[name] = chart_png(name, self.metrics)
        return self._charts[name]

    @property
    def form(self) -> str:
        return narratives.form_for_year(self.year)

    @property
    def sources(self) -> Sources:
        return Sources(self.year, self.payload)

    @property
    def document(self) -> Document:
        if self._document is None:
            blocks = {b.key: b for b in self.blocks}
            build = (
                report_document.build_2008
                if self.form == narratives.FORM_2008
                else report_document.build_2021
            )
            self._document = build(self.title, self.as_of_line, self.sources, blocks)
        return self._document

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
        return line + "。年度尚未结束，本报告为初步统计数据。" if self.preliminary else line

    @property
    def title(self) -> str:
        if self.form == narratives.FORM_2008:
            return f"{DISTRICT}人民政府{self.year}年政府信息公开年度报告"
        return f"{DISTRICT}人民政府{self.year}年政府信息公开工作年度报告"


def build_report(session: Session, year: int, with_differences: bool = True) -> Report:
    snap: Snapshot | None = snapshot.latest_snapshot(session, year)
    if snap is None:
        raise NotFound(f"{year} 年还没有冻结的年末快照，请先冻结快照", {"year": ["没有年末快照"]})
    assert snap.id is not None  # noqa: S101 (a stored row)
    diffs = snapshot.live_differences(session, snap) if with_differences else []
    warnings: list[cross_year.Warning_] = []
    if narratives.form_for_year(snap.year) == narratives.FORM_2021:
        last, source = cross_year.previous_tables(session, snap.year)
        warnings = cross_year.check(snap.year, snap.payload.get("template_tables") or {}, last, source)
    return Report(
        year=snap.year,
        hash=snap.hash,
        snapshot_id=snap.id,
        created_at=snap.created_at,
        definitions_version=snap.definitions_version,
        payload=snap.payload,
        differences=diffs,
        blocks=narratives.blocks_for(session, snap.year),
        cross_year=warnings,
    )


# ---- what only administrators see ---------------------------------------------------------------------


def missing_figures(report: Report) -> list[str]:
    out = [f"{r['label']}：{r['missing']}" for r in report.metrics.values() if r.get("missing")]
    if report.form == narratives.FORM_2021:
        for table, values in report.payload["template_tables"].items():
            if values is None:
                out.append(f"统计表{template_tables.TABLE_TITLES[table]}：管理员尚未填报")
    out += [f"占位符无数据（印为“{PENDING}”）：{m}" for m in report.document.missing]
    return out


def figure_sources(report: Report) -> list[tuple[str, str, str, str]]:
    """(figure, 采用, computed, entered) for every figure that is entered or could be: which one printed."""
    labels = {"computed": "系统计算", "entered": "管理员填报", "none": "无数据"}
    rows = []
    for d in entered_figures.FIGURES:
        choice = narratives.figure_choice(report.sources, d)
        if choice.source == "none" and d.metric is None:
            continue
        rows.append((d.name, labels[choice.source], choice.computed or "—", choice.entered or "—"))
    return rows


def licensing_check(report: Report) -> str | None:
    """表二's entered 行政许可 decisions against the count from the case records, when they differ."""
    computed = (report.payload.get("computed") or {}).get("licensing_decisions")
    table = report.payload["template_tables"].get("2")
    if report.form != narratives.FORM_2021 or not computed or computed.get("missing") or table is None:
        return None
    entered = table.get("20.5|decisions")
    if entered is None or int(entered) == computed["value"]:
        return None
    return (
        f"表二·行政许可·本年处理决定数量填报为 {entered}，按办件记录计算为 {computed['value']}，"
        f"相差 {int(entered) - computed['value']:+d}"
    )


def default_blocks(report: Report) -> list[str]:
    return [b.title for b in report.blocks if not b.edited]


def appendix(report: Report) -> list[tuple[str, str]]:
    return [(d.label, d.formula) for d in metrics.DEFINITIONS]


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


# ---- Markdown ----------------------------------------------------------------------------------------


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(table: Table) -> str:
    """A table with merged header cells as HTML (Markdown tables cannot merge cells)."""

    def row_html(row: list[report_document.Cell]) -> str:
        cells = []
        for c in row:
            tag = "th" if c.header else "td"
            span = (f' colspan="{c.colspan}"' if c.colspan > 1 else "") + (
                f' rowspan="{c.rowspan}"' if c.rowspan > 1 else ""
            )
            cells.append(f"<{tag}{span}>{html.escape(c.text)}</{tag}>")
        return "<tr>" + "".join(cells) + "</tr>"

    head = "".join(row_html(r) for r in table.head)
    body = "".join(row_html(r) for r in table.body)
    return f'<table class="rp-tpl"><thead>{head}</thead><tbody>{body}</tbody></table>'


def render_markdown(report: Report) -> str:
    """The published report: only what the template holds (see ``render_internal_markdown``)."""
    doc = report.document
    out = [f"# {doc.title}", ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            out += ["#" * (block.level + 1) + " " + block.text, ""]
        elif isinstance(block, Para):
            out += [block.text, ""]
        elif isinstance(block, Table):
            if block.simple:
                grid = block.grid()
                out += [_md_table(grid[0], grid[1:]), ""]
            else:
                out += [html_table(block), ""]
    return "\n".join(out).rstrip("\n") + "\n"


def render_internal_markdown(report: Report) -> str:
    """The internal appendix: snapshot identity, checks, missing data, sources, changes, definitions."""
    out = [
        f"# {report.title}：内部附录（不公开）",
        "",
        f"{report.as_of_line}；快照编号 {report.snapshot_id}；"
        f"指标定义版本 {report.definitions_version}；快照哈希（SHA-256）`{report.hash}`。",
        "",
        "## 跨年度核对",
        "",
    ]
    checks = [w.message for w in report.cross_year]
    licensing = licensing_check(report)
    if licensing:
        checks.append(licensing)
    out += [f"- ⚠ {x}" for x in checks] if checks else ["无警告。"]
    out += ["", "## 缺少的数据", ""]
    missing = missing_figures(report)
    out += [f"- {x}" for x in missing] if missing else ["无"]
    out += ["", "## 数字来源（系统计算与管理员填报）", ""]
    sources = figure_sources(report)
    out += (
        [_md_table(["数字", "采用", "系统计算", "管理员填报"], [list(r) for r in sources])]
        if sources
        else ["无"]
    )
    out += ["", "## 仍为默认文字的段落", ""]
    defaults = default_blocks(report)
    out += [f"- {x}" for x in defaults] if defaults else ["无：各段落均已编辑。"]
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
    return {
        "report": report,
        "document": report.document,
        "chart_src": chart_src,
        "html_table": html_table,
        "is_heading": lambda b: isinstance(b, Heading),
        "is_para": lambda b: isinstance(b, Para),
        "is_table": lambda b: isinstance(b, Table),
        "is_chart": lambda b: isinstance(b, Chart),
    }


def internal_context(report: Report) -> dict[str, Any]:
    checks = [w.message for w in report.cross_year]
    licensing = licensing_check(report)
    if licensing:
        checks.append(licensing)
    return {
        "report": report,
        "checks": checks,
        "missing": missing_figures(report),
        "sources": figure_sources(report),
        "defaults": default_blocks(report),
        "definitions": appendix(report),
    }


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


def _docx_table(doc: Any, table: Table) -> None:
    """A table with the template's merged cells; header cells bold, fixed widths within the margins."""
    from docx.shared import Pt

    grid = table.grid()
    out = doc.add_table(rows=len(grid), cols=table.columns)
    out.style = "Table Grid"
    # Every slot's cell taken once, before any merge: python-docx's ``Table.cell`` rebuilds the
    # whole layout grid on each call, which made a template table of ~700 slots cost ~0.6 s. A merge
    # changes only the slots it covers, so the cells of the other slots stay valid; each cell is
    # filled at its top-left slot first and merged afterwards (the covered slots are empty, so the
    # merge moves no content).
    slots = [row.cells for row in out.rows]
    merges: list[tuple[int, int, int, int]] = []
    taken: set[tuple[int, int]] = set()
    for r, row in enumerate(table.head + table.body):
        c = 0
        for cell in row:
            while (r, c) in taken:
                c += 1
            target = slots[r][c]
            target.text = cell.text
            for para in target.paragraphs:
                for run in para.runs:
                    run.font.size = Pt(table.font_size)
                    run.font.bold = cell.header or None
            if cell.colspan > 1 or cell.rowspan > 1:
                merges.append((r, c, r + cell.rowspan - 1, c + cell.colspan - 1))
            for dr in range(cell.rowspan):
                for dc in range(cell.colspan):
                    taken.add((r + dr, c + dc))
            c += cell.colspan
    for r, c, last_r, last_c in merges:
        slots[r][c].merge(slots[last_r][last_c])
    _fit_table(out, column_widths(grid[0], grid[1:]))


def render_docx(report: Report) -> bytes:
    from docx import Document as DocxDocument
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn
    from docx.shared import Mm, Pt, RGBColor

    doc = DocxDocument()
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

    document = report.document
    heading = doc.add_heading(document.title, level=0)
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for block in document.blocks:
        if isinstance(block, Heading):
            doc.add_heading(block.text, level=block.level)
        elif isinstance(block, Para):
            para = doc.add_paragraph(block.text)
            if block.indent:
                para.paragraph_format.first_line_indent = Pt(24)  # two characters at 12 pt
        elif isinstance(block, Table):
            _docx_table(doc, block)
        else:
            doc.add_paragraph(block.title)
            doc.add_picture(io.BytesIO(report.chart(block.name)), width=Mm(min(140, TEXT_WIDTH_MM)))

    buf = io.BytesIO()
    doc.save(buf)
    return _stamped(buf.getvalue(), report.created_at)


def _stamped(docx: bytes, moment: datetime) -> bytes:
    """The DOCX with every ZIP member dated ``moment`` (China time): python-docx dates them at the
    second of saving, so the same snapshot gave a different file on every build."""
    stamp = moment.astimezone(CHINA_TZ).timetuple()[:6]
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=stamp)
            member.compress_type, member.external_attr = info.compress_type, info.external_attr
            dst.writestr(member, src.read(info))
    return out.getvalue()
