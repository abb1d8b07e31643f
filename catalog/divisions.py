"""行政区划 loading and queries: the district, its towns/streets and villages/communities.

The level of a unit is derived from its 12-digit 统计用区划代码 (catalog.codes.division_level);
ancestors (province, city, county) are taken from the columns of the town file when no county
file is given, so the default Gaogang files alone give a complete tree.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from catalog.codes import division_level
from catalog.models import Division
from catalog.search.state import mark_changed
from core.csv_input import header_problems, read_header, records, table_rows, utf8_lines
from core.errors import Invalid, NotFound

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
GAOGANG_FILES = (
    DATA_DIR / "divisions_321203_gaogang_towns.csv",
    DATA_DIR / "divisions_321203_gaogang_villages.csv",
    None,
)
TAIZHOU_FILES = (
    DATA_DIR / "divisions_3212_taizhou_towns.csv",
    DATA_DIR / "divisions_3212_taizhou_villages.csv",
    DATA_DIR / "divisions_3212_taizhou_counties.csv",
)
LEVEL_ORDER = ("province", "city", "county", "town", "village")


def _pad(code: str) -> str:
    return code.ljust(12, "0")


# The columns each file must have (the NBS files' own headers; other columns are ignored).
TOWN_COLUMNS = ("code12", "name", "county_code", "county_name", "city_code", "city_name", "province_code",
                "province_name")
VILLAGE_COLUMNS = ("code12", "name", "town_code12")
COUNTY_COLUMNS = ("code12", "name", "city_code", "city_name", "province_code", "province_name")
# A unit's parent is one level up; a file naming a village as a village's town is wrong, not a tree.
PARENT_LEVEL = {"city": "province", "county": "city", "town": "county", "village": "town"}


def _read(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line, values by column) of a division file, read as the other operators' files are
    (core.csv_input): not UTF-8, a missing column, an unreadable line or a control character is an
    Invalid naming the file and line, not a traceback (a GBK file, a short row)."""
    rows = records(utf8_lines(path))
    line, header = read_header(rows, path.name)
    problems = header_problems(header, required)
    if problems:
        raise Invalid(f"{path.name} 第 {line} 行（表头）：{'；'.join(problems)}", {"file": [path.name]})
    return table_rows(rows, header, path.name)


def _rows_from_files(
    towns_csv: Path, villages_csv: Path, counties_csv: Path | None
) -> list[tuple[str, str, str | None, str | None]]:
    """(code, name, kind, parent_code) for every unit, ancestors first."""
    units: dict[str, tuple[str, str, str | None, str | None]] = {}

    def add(code: str, name: str, kind: str | None, parent: str | None, where: str) -> None:
        code, name, kind = code.strip(), name.strip(), (kind or "").strip() or None
        for value in (code, parent):
            if value is not None and (len(value) != 12 or not value.isascii() or not value.isdigit()):
                raise Invalid(f"{where}: 区划代码 {value!r} 不是 12 位数字", {"code": [value]})
        if not name:
            raise Invalid(f"{where}: 区划名称为空", {"name": [code]})
        # The columns' lengths: PostgreSQL refused a longer value with a traceback, SQLite stored it.
        if len(name) > 100 or (kind is not None and len(kind) > 20):
            raise Invalid(f"{where}: 区划 {code} 的名称超过 100 个字或类型超过 20 个字", {"name": [code]})
        if parent is not None and PARENT_LEVEL.get(division_level(code)) != division_level(parent):
            raise Invalid(
                f"{where}: 区划 {code} {name} 的上级 {parent} 不是其上一级区划", {"parent_code": [parent]}
            )
        seen = units.setdefault(code, (code, name, kind, parent))
        # An ancestor is named again on every town's line; a second record of one code that says
        # something else is a mistake the load must not settle silently by keeping the first.
        if (seen[1], seen[3]) != (name, parent) or (None not in (kind, seen[2]) and kind != seen[2]):
            raise Invalid(f"{where}: 区划代码 {code} 重复且内容不同（{seen[1]} / {name}）", {"code": [code]})

    if counties_csv is not None:
        for i, row in _read(counties_csv, COUNTY_COLUMNS):
            where = f"{counties_csv.name} 第 {i} 行"
            add(_pad(row["province_code"]), row["province_name"], None, None, where)
            add(_pad(row["city_code"]), row["city_name"], None, _pad(row["province_code"]), where)
            add(row["code12"], row["name"], None, _pad(row["city_code"]), where)
    for i, row in _read(towns_csv, TOWN_COLUMNS):
        where = f"{towns_csv.name} 第 {i} 行"
        add(_pad(row["province_code"]), row["province_name"], None, None, where)
        add(_pad(row["city_code"]), row["city_name"], None, _pad(row["province_code"]), where)
        add(_pad(row["county_code"]), row["county_name"], None, _pad(row["city_code"]), where)
        add(row["code12"], row["name"], row.get("town_type"), _pad(row["county_code"]), where)
    for i, row in _read(villages_csv, VILLAGE_COLUMNS):
        where = f"{villages_csv.name} 第 {i} 行"
        add(row["code12"], row["name"], row.get("village_type"), row["town_code12"], where)
    return sorted(units.values(), key=lambda u: (LEVEL_ORDER.index(division_level(u[0])), u[0]))


def load_divisions_csv(
    session: Session, towns_csv: Path, villages_csv: Path, counties_csv: Path | None = None
) -> int:
    """Idempotent upsert of the units in the files; returns how many rows were inserted or changed.

    A village whose town is missing from the files is an error (nothing is written: the caller's
    transaction rolls back).
    """
    rows = _rows_from_files(towns_csv, villages_csv, counties_csv)
    codes = {r[0] for r in rows}
    existing = {d.code: d for d in session.exec(select(Division)).all()}
    changed = 0
    new: list[dict[str, Any]] = []
    for code, name, kind, parent in rows:
        level = division_level(code)
        if parent is not None and parent not in codes and parent not in existing:
            raise Invalid(f"区划 {code} {name} 的上级 {parent} 不存在", {"parent_code": [parent]})
        row = existing.get(code)
        if row is None:
            new.append({"code": code, "name": name, "level": level, "kind": kind, "parent_code": parent})
        elif (row.name, row.level, row.kind, row.parent_code) != (name, level, kind, parent):
            row.name, row.level, row.kind, row.parent_code = name, level, kind, parent
            changed += 1
    if new:
        # New units in one multi-row INSERT rather than one ORM object each (a province has tens of
        # thousands of villages); ``rows`` is ordered by level, so a parent precedes its children.
        # Written before the changed units are flushed: a unit may move under a unit that is new in
        # this load (a township reorganised).
        with session.no_autoflush:
            session.execute(sa.insert(Division), new)
        changed += len(new)
    session.flush()
    if changed:
        mark_changed(session)  # division names label search facets
    return changed


def list_divisions(
    session: Session, *, level: str | None = None, parent_code: str | None = None, q: str | None = None
) -> list[Division]:
    stmt = select(Division)
    if level:
        stmt = stmt.where(Division.level == level)
    if parent_code:
        stmt = stmt.where(Division.parent_code == parent_code)
    if q:
        stmt = stmt.where(col(Division.name).contains(q, autoescape=True))
    return list(session.exec(stmt.order_by(Division.code)).all())


def get_division(session: Session, code: str) -> Division:
    division = session.get(Division, code) if len(code) == 12 else None
    if division is None:
        raise NotFound(f"行政区划 {code} 不存在")
    return division


def children_codes(session: Session, codes: Iterable[str]) -> list[str]:
    """Direct children of the given units."""
    wanted = list(codes)
    if not wanted:
        return []
    stmt = select(Division.code).where(col(Division.parent_code).in_(wanted))
    return list(session.exec(stmt.order_by(Division.code)).all())


def count_by_level(session: Session) -> dict[str, int]:
    stmt = select(Division.level, sa.func.count()).group_by(Division.level)
    return {level: n for level, n in session.exec(stmt).all()}


# GB/T 2260 province-level divisions (省级行政区) by their 2-digit code, with their full names as
# item names spell them.
PROVINCES: dict[str, str] = {
    "11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区",
    "21": "辽宁省", "22": "吉林省", "23": "黑龙江省", "31": "上海市", "32": "江苏省",
    "33": "浙江省", "34": "安徽省", "35": "福建省", "36": "江西省", "37": "山东省",
    "41": "河南省", "42": "湖北省", "43": "湖南省", "44": "广东省", "45": "广西壮族自治区",
    "46": "海南省", "50": "重庆市", "51": "四川省", "52": "贵州省", "53": "云南省",
    "54": "西藏自治区", "61": "陕西省", "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区", "71": "台湾省", "81": "香港特别行政区", "82": "澳门特别行政区",
}


def other_province_named(text: str, district_code: str) -> str | None:
    """The full name of a province other than the district's that ``text`` names, or None.

    Used to keep an item borrowed from another province's catalogue (e.g. 申领《四川省老年人优待证》)
    from being offered as a service of this district. Full names only, so that words such as
    "江西路" or "吉林大米" do not match."""
    own = district_code[:2]
    for code, name in PROVINCES.items():
        if code != own and name in text:
            return name
    return None
