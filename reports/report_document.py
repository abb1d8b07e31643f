"""The published annual report as a list of blocks (headings, paragraphs, tables, charts), by form.

Both forms are built here from a frozen snapshot payload and the year's narrative blocks; the
renderers in reports.annual_report turn the same blocks into Markdown, HTML and DOCX, so the three
formats cannot drift apart. Table headers follow the template cell for cell, merged cells included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reports import entered_figures, narratives, template_tables
from reports.narratives import PENDING, Sources


@dataclass(frozen=True)
class Cell:
    text: str
    colspan: int = 1
    rowspan: int = 1
    header: bool = False


@dataclass
class Table:
    head: list[list[Cell]]
    body: list[list[Cell]]
    columns: int
    font_size: float = 8

    @property
    def simple(self) -> bool:
        """One header row and no merged cell: a plain Markdown table will do."""
        plain = all(c.colspan == 1 and c.rowspan == 1 for row in self.head + self.body for c in row)
        return len(self.head) == 1 and plain and not any(c.header for row in self.body for c in row)

    def grid(self) -> list[list[str]]:
        """Every row as ``columns`` texts, a merged cell's text in its top-left slot (for widths)."""
        out: list[list[str]] = []
        taken: set[tuple[int, int]] = set()
        for r, row in enumerate(self.head + self.body):
            line = [""] * self.columns
            c = 0
            for cell in row:
                while (r, c) in taken:
                    c += 1
                line[c] = cell.text
                for dr in range(cell.rowspan):
                    for dc in range(cell.colspan):
                        taken.add((r + dr, c + dc))
                c += cell.colspan
            out.append(line)
        return out


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str
    indent: bool = True


@dataclass(frozen=True)
class Chart:
    name: str
    title: str


Block = Heading | Para | Table | Chart


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # placeholders printed as PENDING, with their block

    def prose(self, sources: Sources, block: narratives.Block) -> None:
        paragraphs, missing = narratives.fill(block.text, sources)
        self.blocks += [Para(p) for p in paragraphs]
        self.missing += [f"{block.title}：{{{name}}}" for name in dict.fromkeys(missing)]


def _v(values: dict[str, Any] | None, key: str) -> str:
    if values is None:
        return "—"
    v = values.get(key)
    return "" if v is None else str(v)


H = True  # a header cell


def table_2(values: dict[str, Any] | None) -> Table:
    """表二 of 国办公开办函〔2021〕30号: four sub-tables, each under its article row and its own header."""
    body: list[list[Cell]] = []
    groups = [
        ("第二十条第（一）项", ["本年制发件数", "本年废止件数", "现行有效件数"], ["20.1", "20.1n"]),
        ("第二十条第（五）项", ["本年处理决定数量"], ["20.5"]),
        ("第二十条第（六）项", ["本年处理决定数量"], ["20.6a", "20.6b"]),
        ("第二十条第（八）项", ["本年收费金额（单位：万元）"], ["20.8"]),
    ]
    rows = {r: (name, cols) for r, _art, name, cols in template_tables.TABLE2_ROWS}
    for article, headers, keys in groups:
        body.append([Cell(article, colspan=4, header=H)])
        span = 3 // len(headers)
        body.append([Cell("信息内容", header=H), *[Cell(h, colspan=span, header=H) for h in headers]])
        for key in keys:
            name, cols = rows[key]
            body.append([Cell(name), *[Cell(_v(values, f"{key}|{c}"), colspan=span) for c, _l in cols]])
    return Table(head=[], body=body, columns=4, font_size=9)


TABLE3_CORNER = "（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）"


def table_3(values: dict[str, Any] | None) -> Table:
    """表三: the corner note, 申请人情况 over 自然人 | 法人或其他组织 (five kinds) | 总计, then the rows."""
    kinds = [label for c, label in template_tables.TABLE3_COLUMNS if c not in ("natural", "total")]
    head = [
        [Cell(TABLE3_CORNER, rowspan=3, header=H), Cell("申请人情况", colspan=7, header=H)],
        [
            Cell("自然人", rowspan=2, header=H),
            Cell("法人或其他组织", colspan=5, header=H),
            Cell("总计", rowspan=2, header=H),
        ],
        [Cell(k, header=H) for k in kinds],
    ]
    body = [
        [Cell(label), *[Cell(_v(values, f"{r}|{c}")) for c, _l in template_tables.TABLE3_COLUMNS]]
        for r, label in template_tables.TABLE3_ROWS
    ]
    return Table(head=head, body=body, columns=8, font_size=8)


def table_4(values: dict[str, Any] | None) -> Table:
    """表四: 行政复议 (five columns) and 行政诉讼 (未经复议直接起诉, 复议后起诉: five each), one row of 15."""
    labels = [label for _c, label in template_tables.TABLE4_COLUMNS]
    head = [
        [Cell("行政复议", colspan=5, header=H), Cell("行政诉讼", colspan=10, header=H)],
        [
            *[Cell(label, rowspan=2, header=H) for label in labels],
            Cell("未经复议直接起诉", colspan=5, header=H),
            Cell("复议后起诉", colspan=5, header=H),
        ],
        [Cell(label, header=H) for label in labels * 2],
    ]
    row = [
        Cell(_v(values, f"{g}|{c}"))
        for g, _gl in template_tables.TABLE4_GROUPS
        for c, _l in template_tables.TABLE4_COLUMNS
    ]
    return Table(head=head, body=[row], columns=15, font_size=7.5)


TEMPLATE_TABLES = {"2": table_2, "3": table_3, "4": table_4}


def metric_table(result: dict[str, Any], limit: int = 40) -> Table:
    head = [[Cell(h, header=H) for h in ["名称", *result["columns"]]]]
    body = [
        [Cell(r["label"]), *[Cell("" if v is None else str(v)) for v in r["values"]]]
        for r in result["rows"][:limit]
    ]
    return Table(head=head, body=body, columns=1 + len(result["columns"]))


CHART_SPECS: list[tuple[str, str]] = [
    ("no_contact", "六大类事项不见面率"),
    ("towns", "各镇（街道）事项认领"),
    ("departments", "区级部门事项认领（前20）"),
    ("monthly", "逐月办件量"),
    ("sync", "电子证照同步状态（按月）"),
]
ANNEX_METRICS = ("entries_by_town", "cases_by_month", "licence_events")


def build_2021(
    title: str, as_of_line: str, sources: Sources, blocks: dict[str, narratives.Block]
) -> Document:
    """国办公开办函〔2021〕30号: preface, 一 to 六 in order, then the 政务服务 charts and annex tables."""
    doc = Document(title)
    doc.blocks.append(Para(as_of_line, indent=False))
    doc.prose(sources, blocks["preface"])
    doc.blocks.append(Heading(1, "一、总体情况"))
    doc.prose(sources, blocks["overall"])
    for table, key in (("2", "proactive"), ("3", "applications"), ("4", "reviews")):
        doc.blocks.append(Heading(1, template_tables.TABLE_TITLES[table]))
        doc.prose(sources, blocks[key])
        doc.blocks.append(TEMPLATE_TABLES[table](sources.table(table)))
    doc.blocks.append(Heading(1, "五、存在的主要问题及改进情况"))
    doc.prose(sources, blocks["problems"])
    doc.blocks.append(Heading(1, "六、其他需要报告的事项"))
    doc.prose(sources, blocks["other"])
    doc.blocks.append(Heading(1, "附件：政务服务数据图表"))
    doc.blocks += [Chart(name, chart_title) for name, chart_title in CHART_SPECS]
    doc.blocks.append(Heading(1, "附表：分级认领与办件"))
    for key in ANNEX_METRICS:
        result = sources.metrics[key]
        doc.blocks.append(Heading(2, result["label"]))
        doc.blocks.append(Para(PENDING, indent=False) if result.get("missing") else metric_table(result))
    return doc


SECTIONS_2008: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "一、概述",
        [
            ("（一）组织领导和工作机制", "overview_org"),
            ("（二）主动公开和回应关切", "overview_proactive"),
            ("（三）政务服务", "overview_services"),
        ],
    ),
    (
        "二、具体情况分析",
        [
            ("（一）主动公开", "proactive"),
            ("（二）依申请公开", "on_request"),
            ("（三）行政复议和行政诉讼", "reviews"),
        ],
    ),
    ("三、存在问题及改进措施", [("（一）存在问题", "problems"), ("（二）改进措施", "measures")]),
]
# The statistics annex of the 2008 form: every numeric figure, grouped as the old statistics table was.
ANNEX_2008: list[tuple[str, list[str]]] = [
    (
        "一、主动公开情况",
        [
            "portal_items_published",
            "disclosure_platform_items",
            "items_sent_to_city_portal",
            "items_adopted_by_city_portal",
            "portal_special_topics",
            "policy_qa_categories",
            "policy_qa_questions",
        ],
    ),
    ("二、依申请公开情况", ["applications_received"]),
    ("三、行政复议和行政诉讼情况", ["administrative_reviews", "administrative_litigation_lost"]),
    (
        "四、政务服务情况",
        [
            "no_contact_categories",
            "no_contact_rate",
            "featured_service_apps",
            "scenario_bundles",
            "departments_online",
            "cases_handled",
            "licence_records_pushed",
            "elicence_department_coverage",
            "town_public_service_items",
            "village_public_service_items",
            "electronic_supervision_anomalies",
        ],
    ),
    (
        "五、工作机制、宣传和回应关切",
        [
            "towns_and_streets",
            "key_tasks",
            "leaflets_handed_out",
            "citizens_consulted",
            "hotline_12345_valid_requests",
            "hotline_12345_provincial_orders",
            "public_opinion_items",
        ],
    ),
]


def annex_2008(sources: Sources) -> tuple[Table, list[str]]:
    body: list[list[Cell]] = []
    missing: list[str] = []
    for group, keys in ANNEX_2008:
        body.append([Cell(group, colspan=2, header=H)])
        for key in keys:
            definition = entered_figures.BY_KEY[key]
            choice = narratives.figure_choice(sources, definition)
            if choice.text is None:
                missing.append(f"附表：{definition.name}")
            body.append([Cell(definition.name), Cell(choice.text or PENDING)])
    head = [[Cell("统计指标", header=H), Cell("统计数", header=H)]]
    return Table(head=head, body=body, columns=2, font_size=10), missing


def build_2008(
    title: str, as_of_line: str, sources: Sources, blocks: dict[str, narratives.Block]
) -> Document:
    """The 2008 regulation's form, as the district's 2018 report: preface; 一、概述; 二、具体情况分析;
    三、存在问题及改进措施; the statistics annex."""
    doc = Document(title)
    doc.prose(sources, blocks["preface"])
    for heading, parts in SECTIONS_2008:
        doc.blocks.append(Heading(1, heading))
        for sub, key in parts:
            doc.blocks.append(Heading(2, sub))
            doc.prose(sources, blocks[key])
    doc.blocks.append(Heading(1, f"附表：{sources.year}年政府信息公开情况统计表"))
    table, missing = annex_2008(sources)
    doc.blocks.append(table)
    doc.missing += missing
    return doc
