"""Measuring the search: relevance judgements (Recall@10, MRR@10, nDCG@10 per stratum, zero-result
rate) and the LIKE oracle the tests and benchmarks compare against."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from catalog.models import (
    EntryStatus,
    ImplementationEntry,
)
from catalog.search.query import search
from catalog.search.sql import _t
from core.config import PROJECT_ROOT
from core.errors import Invalid


def like_oracle(session: Session, phrase: str) -> set[str]:
    """Task codes of published entries whose name contains ``phrase`` (test oracle, benchmark baseline)."""
    ent = _t(ImplementationEntry)
    escaped = phrase.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = session.execute(
        sa.select(ent.c.task_code).where(
            ent.c.status == EntryStatus.PUBLISHED.value,
            ent.c.applicable.is_(True),
            ent.c.name.like(f"%{escaped}%", escape="\\"),
        )
    )
    return {r[0] for r in rows}


RELEVANCE_CSV = PROJECT_ROOT / "data" / "search_relevance.csv"


def read_relevance(path: Path) -> list[dict[str, Any]]:
    """stratum,query,relevant ("|"-separated exact names; empty for no-answer queries)."""
    out = []
    with path.open(encoding="utf-8", newline="") as fh:
        lines = (line for line in fh if not line.startswith("#"))
        for line_no, row in enumerate(csv.DictReader(lines), start=2):
            stratum = (row.get("stratum") or "").strip()
            if not stratum or row.get("query") is None:
                raise Invalid(f"{path.name} 第 {line_no} 行：缺少 stratum 或 query")
            rel = [r.strip() for r in (row.get("relevant") or "").split("|") if r.strip()]
            if stratum != "no_answer" and not rel:
                raise Invalid(f"{path.name} 第 {line_no} 行：可回答的查询必须列出相关事项")
            out.append({"stratum": stratum, "query": row["query"], "relevant": rel, "line": line_no})
    return out


def evaluate(session: Any, queries: list[dict[str, Any]]) -> dict[str, Any]:
    strata: dict[str, dict[str, list[float]]] = {}
    answerable = zero = 0
    failures: list[str] = []
    for q in queries:
        result = search(session, q["query"], page=1, limit=10)
        names = [h.name for h in result.items]
        s = strata.setdefault(q["stratum"], {"recall": [], "mrr": [], "ndcg": [], "empty": []})
        if q["stratum"] == "no_answer":
            s["empty"].append(1.0 if result.total == 0 else 0.0)
            continue
        answerable += 1
        rel = set(q["relevant"])
        if result.total == 0:
            zero += 1
        gains = [1.0 if n in rel else 0.0 for n in names]
        ideal = min(len(rel), 10)
        s["recall"].append(len(rel.intersection(names)) / ideal)
        first = next((i for i, g in enumerate(gains) if g), None)
        s["mrr"].append(0.0 if first is None else 1.0 / (first + 1))
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
        idcg = sum(1.0 / math.log2(i + 2) for i in range(ideal))
        s["ndcg"].append(dcg / idcg if idcg else 0.0)
        if first is None:
            failures.append(f"{q['stratum']}: {q['query']}")
    return {"strata": strata, "answerable": answerable, "zero": zero, "failures": failures}


def format_report(report: dict[str, Any]) -> str:
    def mean(v: list[float]) -> str:
        return f"{sum(v) / len(v):.3f}" if v else "  -  "

    lines = [f"{'stratum':<12} {'n':>4} {'Recall@10':>10} {'MRR@10':>8} {'nDCG@10':>8} {'empty-ok':>9}"]
    for name, s in report["strata"].items():
        n = len(s["recall"]) or len(s["empty"])
        lines.append(
            f"{name:<12} {n:>4} {mean(s['recall']):>10} {mean(s['mrr']):>8} {mean(s['ndcg']):>8} "
            f"{mean(s['empty']):>9}"
        )
    rate = report["zero"] / report["answerable"] if report["answerable"] else 0.0
    lines.append(
        f"zero-result rate on answerable queries: {report['zero']}/{report['answerable']} = {rate:.1%}"
    )
    if report["failures"]:
        lines.append("no relevant result in the top 10: " + "; ".join(report["failures"]))
    return "\n".join(lines)
