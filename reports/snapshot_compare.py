"""Two frozen snapshots side by side: every figure of each, the difference, and the definitions version
each was computed under.

Pure functions over the snapshots' payloads (canonical JSON, reports.snapshot): nothing is recomputed, so
the comparison shows what was frozen, also for a snapshot made under an older definitions version. A
figure one version has and the other lacks is shown as absent on that side, never as 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reports import metrics, template_tables

ABSENT = "（该快照无此指标）"
MISSING = "缺少数据"


@dataclass(frozen=True)
class ComparedFigure:
    """A rate or a count (or a template-table cell): both sides as printed, and the difference."""

    key: str
    label: str
    a: str
    b: str
    difference: str
    changed: bool


@dataclass(frozen=True)
class ComparedRow:
    label: str
    cells: tuple[tuple[str, str, str], ...]  # (a, b, difference) per column
    changed: bool


@dataclass(frozen=True)
class ComparedTable:
    key: str
    label: str
    columns: tuple[str, ...]
    rows: tuple[ComparedRow, ...]
    changed_cells: int
    note: str | None = None


@dataclass
class Comparison:
    figures: list[ComparedFigure] = field(default_factory=list)
    tables: list[ComparedTable] = field(default_factory=list)
    template_cells: list[ComparedFigure] = field(default_factory=list)
    versions_differ: bool = False

    @property
    def changed(self) -> int:
        return (
            sum(f.changed for f in self.figures)
            + sum(t.changed_cells for t in self.tables)
            + sum(c.changed for c in self.template_cells)
        )


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _delta(a: Any, b: Any) -> str:
    if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool):
        return "0" if a == b else f"{b - a:+,}"
    return "" if a == b else "有变化"


def _rate_value(r: dict[str, Any]) -> float | None:
    if r.get("missing") or not r.get("denominator"):
        return None
    return float(r["numerator"]) / float(r["denominator"])


def _rate_text(r: dict[str, Any] | None) -> str:
    if r is None:
        return ABSENT
    value = _rate_value(r)
    head = MISSING if value is None else f"{100 * value:.1f}%"
    text = f"{head}（{r['numerator']}/{r['denominator']}"
    if r.get("reporting_rate") is not None:
        text += f"，填报率 {100 * r['reporting_rate']:.1f}%"
    return text + "）"


def _compare_rate(key: str, a: dict[str, Any] | None, b: dict[str, Any] | None) -> ComparedFigure:
    label = (b or a or {}).get("label", key)
    side_a = (a["numerator"], a["denominator"]) if a else None
    side_b = (b["numerator"], b["denominator"]) if b else None
    changed = side_a != side_b or bool((a or {}).get("missing")) != bool((b or {}).get("missing"))
    difference = ""
    if a is not None and b is not None:
        va, vb = _rate_value(a), _rate_value(b)
        parts = []
        if va is not None and vb is not None:
            parts.append(f"{100 * (vb - va):+.1f} 个百分点")
        num, den = _delta(a["numerator"], b["numerator"]), _delta(a["denominator"], b["denominator"])
        parts.append(f"分子 {num}，分母 {den}")
        difference = "；".join(parts) if changed else "无变化"
    return ComparedFigure(key, label, _rate_text(a), _rate_text(b), difference, changed)


def _count_text(r: dict[str, Any] | None) -> str:
    if r is None:
        return ABSENT
    if r.get("missing"):
        return MISSING
    return _number(r["value"])


def _compare_count(key: str, a: dict[str, Any] | None, b: dict[str, Any] | None) -> ComparedFigure:
    label = (b or a or {}).get("label", key)
    ta, tb = _count_text(a), _count_text(b)
    changed = ta != tb
    difference = ""
    if a is not None and b is not None and not a.get("missing") and not b.get("missing"):
        difference = _delta(a["value"], b["value"]) if changed else "无变化"
    elif a is not None and b is not None:
        difference = "有变化" if changed else "无变化"
    return ComparedFigure(key, label, ta, tb, difference, changed)


def _text(r: dict[str, Any]) -> str:
    if r["type"] == "rate":
        return _rate_text(r)
    if r["type"] == "count":
        return _count_text(r)
    return f"表（{len(r.get('rows', []))} 行）"


def _compare_table(key: str, a: dict[str, Any] | None, b: dict[str, Any] | None) -> ComparedTable:
    label = (b or a or {}).get("label", key)
    a_cols = list((a or {}).get("columns", []))
    b_cols = list((b or {}).get("columns", []))
    columns = a_cols + [c for c in b_cols if c not in a_cols]
    note = None
    if a is not None and b is not None and a_cols != b_cols:
        note = "两个快照的列不同，按列名对照"
    for side, result in (("A", a), ("B", b)):
        if result is None:
            note = f"快照{side}无此表"
        elif result.get("missing"):
            note = (note + "；" if note else "") + f"快照{side}缺少数据：{result['missing']}"

    def by_code(result: dict[str, Any] | None, cols: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        if result is None or result.get("missing"):
            return {}
        return {r["code"]: (r["label"], dict(zip(cols, r["values"], strict=False))) for r in result["rows"]}

    rows_a, rows_b = by_code(a, a_cols), by_code(b, b_cols)
    codes = list(rows_a) + [c for c in rows_b if c not in rows_a]
    rows: list[ComparedRow] = []
    changed_cells = 0
    for code in codes:
        row_label = (rows_b.get(code) or rows_a[code])[0]
        va, vb = rows_a.get(code, ("", {}))[1], rows_b.get(code, ("", {}))[1]
        cells = []
        row_changed = False
        for col in columns:
            x, y = va.get(col), vb.get(col)
            changed = x != y
            row_changed |= changed
            changed_cells += changed
            cells.append((_number(x), _number(y), _delta(x, y) if x is not None and y is not None else ""))
        rows.append(ComparedRow(row_label, tuple(cells), row_changed))
    return ComparedTable(key, label, tuple(columns), tuple(rows), changed_cells, note)


def _ordered_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The current definitions' order first, then keys only an older (or newer) version has."""
    known = [d.key for d in metrics.DEFINITIONS if d.key in a or d.key in b]
    rest = sorted((set(a) | set(b)) - set(known))
    return known + rest


def _template_cells(a: dict[str, Any], b: dict[str, Any]) -> list[ComparedFigure]:
    out: list[ComparedFigure] = []
    for table, title in template_tables.TABLE_TITLES.items():
        va, vb = a.get(table), b.get(table)
        if va is None or vb is None:
            ta = "未填报" if va is None else "已填报"
            tb = "未填报" if vb is None else "已填报"
            out.append(ComparedFigure(f"template_table_{table}", title, ta, tb, "" if ta == tb else "有变化",
                                      ta != tb))
            continue
        for key, label in template_tables.cells(table):
            x, y = va.get(key), vb.get(key)
            out.append(
                ComparedFigure(f"template_table_{table}", f"{title}·{label}", _number(x), _number(y),
                               _delta(x, y), x != y)
            )
    return out


def compare(a: dict[str, Any], b: dict[str, Any]) -> Comparison:
    """Snapshot A against snapshot B (payloads): B − A for every figure both hold."""
    ma, mb = a.get("metrics", {}), b.get("metrics", {})
    out = Comparison(versions_differ=a.get("definitions_version") != b.get("definitions_version"))
    for key in _ordered_keys(ma, mb):
        ra, rb = ma.get(key), mb.get(key)
        kind = (rb or ra or {}).get("type")
        if ra is not None and rb is not None and ra["type"] != rb["type"]:
            # The same key meant another kind of figure under the other definitions version.
            out.figures.append(
                ComparedFigure(key, rb.get("label", key), _text(ra), _text(rb), "口径不同，不作比较", True)
            )
        elif kind == "rate":
            out.figures.append(_compare_rate(key, ra, rb))
        elif kind == "count":
            out.figures.append(_compare_count(key, ra, rb))
        elif kind == "table":
            out.tables.append(_compare_table(key, ra, rb))
    out.template_cells = _template_cells(a.get("template_tables", {}), b.get("template_tables", {}))
    return out
