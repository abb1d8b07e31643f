"""Checks of one year's template tables against the previous year's (warnings, never refusals).

- 表三: this year's 二、上年结转 equals last year's 四、结转下年度继续办理, per applicant column.
- 表二: 现行有效件数 = last year's 现行有效件数 + 本年制发件数 − 本年废止件数, for 规章 and 行政规范性文件.

Both sides come from frozen snapshots where there are any (the previous year's latest), else from the
entered tables; a check that lacks one side says it cannot be made. Pure functions over two payloads'
``template_tables`` plus a small loader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from reports import services, snapshot, template_tables


@dataclass(frozen=True)
class Warning_:
    check: str  # "carry_over" or "current_count"
    message: str


def check(
    this_year: int, tables: dict[str, Any], last_tables: dict[str, Any] | None, last_source: str
) -> list[Warning_]:
    out: list[Warning_] = []
    last = last_tables or {}
    t3, l3 = tables.get("3"), last.get("3")
    if t3 is None:
        out.append(Warning_("carry_over", f"{this_year} 年表三尚未填报，无法核对上年结转"))
    elif l3 is None:
        out.append(
            Warning_("carry_over", f"{this_year - 1} 年表三没有数据（{last_source}），无法核对上年结转")
        )
    else:
        for c, label in template_tables.TABLE3_COLUMNS:
            now, before = t3.get(f"2|{c}"), l3.get(f"4|{c}")
            if now != before:
                out.append(
                    Warning_(
                        "carry_over",
                        f"表三·{label}：{this_year} 年“二、上年结转”为 {now}，"
                        f"{this_year - 1} 年“四、结转下年度继续办理”为 {before}（{last_source}），应相等",
                    )
                )
    t2, l2 = tables.get("2"), last.get("2")
    for row, _art, name, _cols in template_tables.TABLE2_ROWS[:2]:
        if t2 is None:
            out.append(Warning_("current_count", f"{this_year} 年表二尚未填报，无法核对{name}现行有效件数"))
            continue
        if l2 is None:
            out.append(
                Warning_(
                    "current_count",
                    f"{this_year - 1} 年表二没有数据（{last_source}），无法核对{name}现行有效件数",
                )
            )
            continue
        made, repealed, current = (t2.get(f"{row}|{c}") for c in ("made", "repealed", "current"))
        before = l2.get(f"{row}|current")
        if None in (made, repealed, current, before):
            continue
        expected = int(before) + int(made) - int(repealed)
        if int(current) != expected:
            out.append(
                Warning_(
                    "current_count",
                    f"表二·{name}：现行有效件数 {current}，"
                    f"按上年 {before} + 本年制发 {made} − 本年废止 {repealed} "
                    f"应为 {expected}（上年数据{last_source}）",
                )
            )
    return out


def previous_tables(session: Session, year: int) -> tuple[dict[str, Any] | None, str]:
    """Last year's template tables and where they come from, in words."""

    snap = snapshot.latest_snapshot(session, year - 1)
    if snap is not None:
        tables: dict[str, Any] = snap.payload.get("template_tables") or {}
        return tables, f"取自 {year - 1} 年快照 #{snap.id}"
    live = services.template_table_values(session, year - 1)
    if any(v is not None for v in live.values()):
        return dict(live), f"取自 {year - 1} 年填报值（未冻结快照）"
    return None, f"{year - 1} 年没有快照也没有填报"
