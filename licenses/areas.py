"""管辖属地: whether a licence's 6-digit area code names a county-level or higher administrative division
(province, city or county) in the sense of GB/T 2260, before it goes on the licence and to the city
registry.

Two sources, the divisions table first:

* The divisions table (catalog.models.Division) holds the platform's own part of the country: the
  district's towns and villages (``flask catalog load-divisions``) or the whole city's (``--city``),
  with their county, city and province. The 12-digit 统计用区划代码 of a province, city or county is
  its 6-digit GB/T 2260 code + "000000". For a city of which the table holds a county, the table
  decides which counties the city has: a county code of that city that it does not hold is refused.
  This is what catches a mistyped county of our own city (321299), which is well formed. The cost:
  when only the district is loaded, another county of the same city (321202 海陵区) is refused too.
  A department of this platform does not issue licences under another county's jurisdiction, and the
  message names the counties that are loaded, so an operator who needs the others loads the whole
  city. The alternative, a table that only ever accepts, would refuse nothing the structure does
  not already refuse. The codes of the city itself and of provinces are judged by the structure (a
  county's city exists; the demo's fallback division is a county row without its ancestors).
* The structure of the code, for the rest of the country, which the table does not hold (a code
  absent from it there proves nothing). GB/T 2260: the first two digits are one of the 34
  province-level codes (catalog.divisions.PROVINCES, not every number from 11 to 82); the next two
  are 00 for the province itself, 01-70 for a prefecture-level unit or 90 for the counties the
  province governs directly (90 is only a grouping, so XX9000 names no division); the last two are
  00 for the prefecture itself or any county number. Taiwan, Hong Kong and Macao have only their
  province-level code (710000, 810000, 820000). 000000, 999999 and 320099 fail here.

A code that was valid once and has since been retired (姜堰市 321284, now 姜堰区 321204) is refused in a
city the table holds: the table lists the divisions as they are. Amending a licence re-checks a carried
over code by its structure only (licenses.issuing.amend_licence), so such a licence can still be
corrected.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from sqlmodel import Session, col, select

from catalog.divisions import PROVINCES
from catalog.models import Division

AreaRule = Callable[[str], "str | None"]  # an area code -> why it is refused, or None

AREA_RE = re.compile(r"[0-9]{6}")  # ASCII digits only (\d takes fullwidth and other scripts' digits)
NOT_A_CODE = "管辖属地编码应为 6 位行政区划代码"
PROVINCE_ONLY = {"71", "81", "82"}  # 台湾省, 香港特别行政区, 澳门特别行政区: no lower division codes
MAX_LISTED = 10


def _prefecture_part_ok(part: str, county: str) -> bool:
    if part == "00":
        return county == "00"
    if part == "90":
        return county != "00"
    return "01" <= part <= "70"


def structural_problem(code: str) -> str | None:
    """Why ``code`` cannot be a county-level or higher GB/T 2260 code by its form alone, or None."""
    if not AREA_RE.fullmatch(code):
        return NOT_A_CODE
    province, prefecture, county = code[:2], code[2:4], code[4:]
    if province not in PROVINCES:
        return f"管辖属地 {code} 不是有效的行政区划代码：前两位 {province} 不是省级行政区划代码（GB/T 2260）"
    if province in PROVINCE_ONLY and code[2:] != "0000":
        return f"管辖属地 {code} 不是有效的行政区划代码：{PROVINCES[province]}应为 {province}0000"
    if not _prefecture_part_ok(prefecture, county):
        return (
            f"管辖属地 {code} 不是县级及以上行政区划代码（GB/T 2260）："
            f"第 3-4 位 {prefecture} 不是地级区划代码"
        )
    return None


class AreaCodes:
    """The table's side of the rule, read once per city and kept: one instance per request, or per
    bulk import (licenses.bulk), so 140k rows cost one small query per city they name, not one per row.
    """

    def __init__(self) -> None:
        # city prefix (4 digits) -> (the city's name or its code, {6-digit code: name} of the
        # counties the table holds of it: empty when none)
        self._cities: dict[str, tuple[str, dict[str, str]]] = {}

    def _city(self, session: Session, prefix: str) -> tuple[str, dict[str, str]]:
        if prefix not in self._cities:
            rows = session.exec(
                select(Division.code, Division.name, Division.level).where(
                    col(Division.level).in_(("city", "county")),
                    col(Division.code).startswith(prefix),
                )
            ).all()
            city = next((name for _code, name, level in rows if level == "city"), f"{prefix}00")
            counties = {code[:6]: name for code, name, level in rows if level == "county"}
            self._cities[prefix] = (city, counties)
        return self._cities[prefix]

    def problem(self, session: Session, code: str) -> str | None:
        """Why ``code`` is refused as a licence's 管辖属地, or None (see the module docstring)."""
        problem = structural_problem(code)
        if problem is not None or code[4:] == "00":
            return problem  # a province or a city: the structure decides
        city, counties = self._city(session, code[:4])
        if not counties or code in counties:
            return None
        listed = "、".join(f"{c} {n}" for c, n in sorted(counties.items())[:MAX_LISTED])
        more = "等" if len(counties) > MAX_LISTED else ""
        return f"管辖属地 {code} 不是已载入的{city}县级行政区划（已载入：{listed}{more}）"

    def rule(self, session: Session) -> AreaRule:
        """The rule with the table of ``session`` (prepare_licence's ``area_rule``)."""
        return functools.partial(self.problem, session)
