"""Synthetic licences for the demo and the benchmarks: realistic holders, valid check digits, dates
within a year. Benchmark and demo data only: rows are written through licenses.bulk.run_bulk, the
production bulk issue (validation, outbox rows, one audit row per chunk), never around it.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from catalog.codes import id_check_char, make_uscc
from licenses.bulk import CSV_COLUMNS
from licenses.models import LicenceType
from licenses.types import add_years, today

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华玉兰志强海燕春梅国平晓东文"
ORG_WORDS = [
    "鑫源",
    "恒通",
    "港城",
    "长江",
    "永安",
    "白马",
    "华泰",
    "润禾",
    "万家",
    "惠民",
    "金港",
    "新港",
    "嘉禾",
    "瑞丰",
    "同德",
    "口岸",
    "刁铺",
    "许庄",
    "大泗",
    "胡庄",
]
ORG_KINDS = [
    "食品店",
    "便利店",
    "餐饮店",
    "药房",
    "建材经营部",
    "物流有限公司",
    "贸易有限公司",
    "科技有限公司",
    "农业专业合作社",
    "机械制造有限公司",
]
COUNTIES = ["321202", "321203", "321203", "321203", "321204", "321281", "321282", "321283"]


def synthetic_id_number(rng: random.Random) -> str:
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 55 * 365))
    first17 = f"{rng.choice(COUNTIES)}{born:%Y%m%d}{rng.randrange(0, 1000):03d}"
    return first17 + id_check_char(first17)


def synthetic_uscc(rng: random.Random) -> str:
    head = rng.choice(["91321203", "92321203", "93321203", "91321200"])
    org8 = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
    return make_uscc(head, org8)


def _person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def synthetic_face(lt: LicenceType, rng: random.Random, holder_kind: str | None = None) -> dict[str, Any]:
    """Face values that fit each field's meaning: a person's name for 法定代表人, an address only for an
    address field; fields meant for the other holder kind (``for``) stay empty."""
    face: dict[str, Any] = {}
    for spec in lt.face_schema or []:
        kind = spec["type"]
        key = spec["key"]
        if spec.get("for") and holder_kind and spec["for"] != holder_kind:
            continue
        if kind == "enum":
            face[key] = rng.choice(spec["choices"])
        elif kind == "integer":
            face[key] = rng.randrange(1, 1000)
        elif kind == "date":
            face[key] = (date(2015, 1, 1) + timedelta(days=rng.randrange(3000))).isoformat()
        elif spec.get("required") or rng.random() < 0.7:
            if key in ("legal_representative", "spouse_name"):
                value = _person_name(rng)
            elif "address" in key:
                value = f"泰州市高港区{rng.choice(ORG_WORDS)}路{rng.randrange(1, 300)}号"
            elif "nationality" in key:
                value = "中国"
            else:
                value = f"{spec['label']}（演示）"
            face[key] = value[: spec.get("max_length", 200)]
    return face


def synthetic_rows(
    types: Sequence[LicenceType], count: int, *, year: int = 2018, seed: int = 2018, start_line: int = 1
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Realistic licences for benchmarks and the demo: valid check digits, dates within ``year``."""
    rng = random.Random(seed)  # noqa: S311  (reproducible synthetic data, not secrets)
    start = date(year, 1, 1)
    # Never after today: the current year would otherwise give licences "issued" in the future,
    # which issue validation rightly refuses.
    span = max(1, min(365, (today() - start).days + 1))
    for i in range(count):
        lt = types[i % len(types)]
        issued = start + timedelta(days=rng.randrange(0, span))
        if lt.holder_code_type == "111":
            name = _person_name(rng)
            code = synthetic_id_number(rng)
        else:
            name = f"泰州市高港区{rng.choice(ORG_WORDS)}{rng.choice(ORG_KINDS)}"
            code = synthetic_uscc(rng)
        row: dict[str, Any] = {
            "type_code": lt.code,
            "holder_name": name,
            "holder_code": code,
            "number": f"{year}{i + 1:08d}",
            "issue_date": issued,
            "valid_from": issued,
            "valid_to": (add_years(issued, lt.validity_years) - timedelta(days=1))
            if lt.validity_years
            else None,
            "area_code": "321203",
            "face": synthetic_face(lt, rng, "111" if lt.holder_code_type == "111" else "001"),
            # The whole seed, not a part of it: two runs with different seeds never share a serial
            # (seed % 100 made seeds 100 and 200 issue the same licences, so the second was refused
            # as already issued). The fixed-width suffix keeps the concatenation unambiguous.
            "serial": f"{year}{abs(seed)}{i + 1:09d}",
        }
        yield start_line + i, row


def write_csv(path: Path, rows: Iterable[tuple[int, Mapping[str, Any]]]) -> int:
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for _, row in rows:
            out: dict[str, Any] = {k: row.get(k) for k in CSV_COLUMNS}
            out["face"] = json.dumps(row.get("face") or {}, ensure_ascii=False)
            for k in ("issue_date", "valid_from", "valid_to"):
                out[k] = out[k].isoformat() if isinstance(out[k], date) else (out[k] or "")
            writer.writerow(out)
            n += 1
    return n
