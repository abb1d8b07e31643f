"""Year-end snapshots: freeze every figure of a year, hash it, and compare it with the live data.

The payload is canonical JSON (sorted keys, no creation time inside), so freezing the same data
twice gives the same hash, and a report built from a snapshot is identical on every run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.audit import record
from core.auth import Principal
from core.errors import Forbidden, Invalid, NotFound
from core.types import utcnow
from reports import metrics, report_figures, services, template_tables
from reports.models import Snapshot


def canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def payload_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(payload).encode()).hexdigest()


def _frozen(result: dict[str, Any]) -> dict[str, Any]:
    """Licence-level id lists (up to every licence of the district) are not frozen: counts are.

    Entry, item, department and bundle lists are kept, so a frozen figure can still be explained.
    """
    if result["kind"] != "licence":
        return result
    out = dict(result)
    for key in ("ids", "numerator_ids", "denominator_ids"):
        if key in out:
            out[key] = []
    if "rows" in out:
        out["rows"] = [{**row, "ids": []} for row in out["rows"]]
    return out


def build_payload(session: Session, year: int, as_of: datetime) -> dict[str, Any]:
    results = services.compute_metrics(session, year, as_of)
    return {
        "year": year,
        "as_of": as_of.isoformat(),
        "definitions_version": metrics.DEFINITIONS_VERSION,
        "metrics": {k: _frozen(r.as_dict()) for k, r in results.items()},
        "template_tables": services.template_table_values(session, year),
        **report_figures.report_payload(session, year, as_of),
    }


def create_snapshot(
    session: Session,
    actor: Principal,
    year: int,
    *,
    now: datetime | None = None,
    preliminary: bool = False,
) -> Snapshot:
    """Freeze the year's figures as of its last instant (China time) for a finished year, or, with
    ``preliminary``, the running year's figures as of now (marked 初步 in the payload and the report).

    A new snapshot of the same year is added (the old ones stay for the record); the report uses
    the latest, so the year-end snapshot frozen after the year replaces a preliminary one.
    """
    if not actor.is_admin:
        raise Forbidden("仅区级管理员可冻结年度快照")
    start, end = services.year_bounds(year)
    moment = now or utcnow()
    if preliminary:
        if moment > end:
            raise Invalid(f"{year} 年已结束，请冻结年末快照", {"year": [f"{year} 年已结束"]})
        if moment < start:
            raise Invalid(f"{year} 年尚未开始，不能冻结快照", {"year": [f"{year} 年尚未开始"]})
        # Whole seconds: the statistical moment is printed and must rebuild the same figures.
        as_of = moment.replace(microsecond=0)
    elif moment <= end:
        raise Invalid(
            f"{year} 年尚未结束，不能冻结年末快照；可冻结为初步快照",
            {"year": [f"{year} 年尚未结束"]},
        )
    else:
        as_of = end
    built = build_payload(session, year, as_of)
    if preliminary:
        built["preliminary"] = True
    payload = json.loads(canonical(built))
    snap = Snapshot(
        year=year,
        as_of=as_of,
        definitions_version=metrics.DEFINITIONS_VERSION,
        payload=payload,
        hash=payload_hash(payload),
        created_by=actor.name,
    )
    session.add(snap)
    session.flush()
    record(
        session,
        actor=actor,
        action="reports.snapshot",
        entity_type="report_snapshot",
        entity_id=snap.id,
        new={
            "year": year,
            "hash": snap.hash,
            "definitions_version": snap.definitions_version,
            "preliminary": preliminary,
        },
    )
    return snap


def latest_snapshot(session: Session, year: int) -> Snapshot | None:
    return session.exec(
        select(Snapshot).where(Snapshot.year == year).order_by(col(Snapshot.id).desc())
    ).first()


def get_snapshot(session: Session, snapshot_id: int) -> Snapshot:
    snap = session.get(Snapshot, snapshot_id)
    if snap is None:
        raise NotFound(f"快照 #{snapshot_id} 不存在")
    return snap


def list_snapshots(session: Session) -> list[Snapshot]:
    return list(
        session.exec(select(Snapshot).order_by(col(Snapshot.year).desc(), col(Snapshot.id).desc())).all()
    )


@dataclass(frozen=True)
class Difference:
    """A figure that differs between the snapshot and the live data recomputed at the same instant."""

    key: str
    label: str
    frozen: Any
    current: Any


def _headline(result: dict[str, Any]) -> dict[str, Any]:
    kind = result["type"]
    if kind == "rate":
        return {"": f"{result['numerator']}/{result['denominator']}"}
    if kind == "count":
        return {"": result["value"]}
    return {row["label"]: row["values"] for row in result["rows"]}


def differences(frozen: dict[str, Any], live: dict[str, Any]) -> list[Difference]:
    out: list[Difference] = []
    for key, result in frozen["metrics"].items():
        now = live["metrics"].get(key)
        if now is None:
            continue
        a, b = _headline(result), _headline(now)
        for sub in sorted(set(a) | set(b)):
            if a.get(sub) != b.get(sub):
                label = result["label"] + (f"·{sub}" if sub else "")
                out.append(Difference(key, label, a.get(sub), b.get(sub)))
    for table, values in frozen["template_tables"].items():
        now_values = live["template_tables"].get(table)
        if values == now_values:
            continue
        name = template_tables.TABLE_TITLES[table]
        if values is None or now_values is None:
            state = ("未填报" if values is None else "已填报", "未填报" if now_values is None else "已填报")
            out.append(Difference(f"template_table_{table}", name, *state))
            continue
        for key, label in template_tables.cells(table):
            if values.get(key) != now_values.get(key):
                out.append(
                    Difference(
                        f"template_table_{table}", f"{name}·{label}", values.get(key), now_values.get(key)
                    )
                )
    return out


def live_differences(session: Session, snap: Snapshot) -> list[Difference]:
    built = build_payload(session, snap.year, snap.as_of)
    if snap.payload.get("preliminary"):
        built["preliminary"] = True
    live = json.loads(canonical(built))
    return differences(snap.payload, live)
