"""Catalogue part of the Gaogang demo, built from the real data in data/.

What it builds, in one transaction, all through catalog.services / catalog.importer / core.auth:

- the real 高港区 divisions: 15 towns/streets and 153 villages/communities (catalog.divisions);
- the 1,135 real items of data/service_items_guangan_511602.csv, imported for the district
  (catalog.importer re-homes them to Gaogang departments, with the made-up demo USCCs of
  data/demo_department_uscc_321203.csv, and publishes the
  district-level entries);
- one body per town/street (level 5) and one committee per village/community (level 6), with demo
  USCCs that pass both check characters;
- town- and village-level claims of items whose type fits (公共服务 only at village level), about as
  many as the 2018 Gaogang report gives (73 town-level and 66 village-level claims), most of them
  published with complete elements;
- entries that pass the no-contact rule and carry the flag (set through ``set_no_contact``), and
  entries that fail it (a visit is needed, paper materials);
- a few drafts and a submission waiting for review in the demo department, so every role has work;
- the source file's 广安区 department names mapped to Gaogang departments
  (data/department_map_511602_321203.csv), each recorded as its items' 主管部门; items that name
  another province recorded as "本地不适用" with that reason; no upper-level (province/city) basic
  catalogue, because none is available: the 三级四同 report says so;
- one user per role with a generated password and one API token each, written to
  ``instance/demo_credentials.json`` (never to the repository).

Running it again reuses the data: when the demo users and the credentials file exist it does
nothing; when the file was deleted it issues new passwords and tokens for the same users.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from catalog import entries as entry_services
from catalog import revisions, services
from catalog.codes import make_uscc
from catalog.divisions import GAOGANG_FILES, load_divisions_csv
from catalog.models import (
    NO_CONTACT_SCOPE_TYPES,
    CatalogItem,
    Department,
    Division,
    EntryStatus,
    ImplementationEntry,
)
from core import users as user_admin
from core.audit import record
from core.auth import SYSTEM, ApiToken, Role, User, end_sessions, hash_password
from core.config import PROJECT_ROOT, Settings
from core.db import Database, id_of
from core.login import clear_login_failures
from core.types import utcnow
from demo import elements_demo

ITEMS_CSV = PROJECT_ROOT / "data" / "service_items_guangan_511602.csv"
# The item file names 广安区's departments and gives no 统一社会信用代码: the demo maps the names to
# Gaogang departments (data/department_map_511602_321203.csv, provenance in its header) and supplies
# made-up codes for those.
DEMO_USCC_MAP = PROJECT_ROOT / "data" / "demo_department_uscc_321203.csv"
DEMO_DEPARTMENT_MAP = PROJECT_ROOT / "data" / "department_map_511602_321203.csv"
TOWN_CLAIMS = 73  # 2018 高港区 report: items claimed at town level
VILLAGE_CLAIMS = 66  # ... and at village level
TOWN_ITEMS_EACH = 7
VILLAGE_ITEMS_EACH = 3
NO_CONTACT_DISTRICT = 30  # district entries revised to pass the rule and flagged
CONTACT_DISTRICT = 20  # district entries revised with elements that fail it
DEMO_TOWN = "321203001000"  # 口岸街道

# Names that fit town/street and village/community service windows (便民服务中心 / 代办点).
TOWN_KEYWORDS = (
    "最低生活保障", "临时救助", "特困人员", "高龄津贴", "残疾人", "孤儿", "老年人优待证", "就业登记",
    "失业登记", "城乡居民基本养老保险", "独生子女", "计划生育", "农村", "医疗救助", "居住证",
    "社会保障卡", "预防接种", "养蜂", "结婚登记预约", "困难",
)
VILLAGE_KEYWORDS = (
    "社会保障卡", "城乡居民基本养老保险", "高龄津贴", "就业登记", "失业登记", "老年人优待证",
    "最低生活保障", "临时救助", "残疾人", "预防接种", "职业介绍", "求职创业补贴",
)
ROLE_USERS = (
    # (username, display name, role, scope kind)
    ("demo_admin", "区政务办管理员", Role.ADMIN, None),
    ("demo_editor", "区民政局编辑", Role.DEPT_EDITOR, "department"),
    ("demo_reviewer", "区民政局审核员", Role.DEPT_REVIEWER, "department"),
    ("demo_town", "口岸街道经办人", Role.DIVISION_OPERATOR, "town"),
    ("demo_village", "社区经办人", Role.DIVISION_OPERATOR, "village"),
)


@dataclass
class DemoSummary:
    reused: bool = False
    divisions: int = 0
    items_created: int = 0
    import_errors: list[Any] = field(default_factory=list)
    town_bodies: int = 0
    village_bodies: int = 0
    town_claims: int = 0
    village_claims: int = 0
    no_contact: int = 0
    declined: int = 0
    not_applicable: int = 0
    credentials_path: Path | None = None


def credentials_path(settings: Settings) -> Path:
    return settings.instance_dir / "demo_credentials.json"


def load(db: Database, settings: Settings, *, progress: bool = True,
         echo: Callable[[str], None] = print) -> DemoSummary:
    """Build the demo once (idempotent). Returns what it did; prints a line per step."""
    path = credentials_path(settings)
    with db.transaction() as session:
        existing = _demo_users(session)
    if len(existing) == len(ROLE_USERS) and path.exists():
        echo(f"demo already loaded; logins in {path}")
        return DemoSummary(reused=True, credentials_path=path)

    summary = DemoSummary(credentials_path=path)
    with db.transaction() as session:
        if existing:
            echo("demo data found but the credentials file is missing: issuing new passwords and tokens")
            creds = _reset_credentials(session, existing)
            summary.reused = True
        else:
            creds = _build(session, settings, summary, progress=progress, echo=echo)
    # Written only after the commit, so the file never names users that do not exist.
    _write_credentials(path, creds)
    echo(f"demo logins written to {path}")
    return summary


# ---------------------------------------------------------------- building


def _build(session: Session, settings: Settings, summary: DemoSummary, *, progress: bool,
           echo: Callable[[str], None]) -> list[dict[str, str]]:
    from catalog.importer import import_items_csv, read_department_map, read_uscc_map

    summary.divisions = load_divisions_csv(session, *GAOGANG_FILES)
    echo(f"divisions: {summary.divisions} loaded or updated")
    report = import_items_csv(
        session,
        ITEMS_CSV,
        settings.district_code,
        progress=progress,
        department_usccs=read_uscc_map(DEMO_USCC_MAP),
        department_names=read_department_map(DEMO_DEPARTMENT_MAP),
    )
    summary.items_created = int(getattr(report, "items_created", getattr(report, "created", 0)))
    summary.import_errors = list(getattr(report, "errors", []))
    echo(f"items: {summary.items_created} created, {len(summary.import_errors)} rows rejected")

    district = settings.district_code.ljust(12, "0")
    in_district = col(Division.code).startswith(settings.district_code)
    towns = list(session.exec(
        select(Division).where(Division.level == "town", in_district).order_by(Division.code)))
    villages = list(session.exec(
        select(Division).where(Division.level == "village", in_district).order_by(Division.code)))
    town_bodies = [_body(session, t, "5") for t in towns]
    village_bodies = [_body(session, v, "6") for v in villages]
    summary.town_bodies, summary.village_bodies = len(town_bodies), len(village_bodies)
    echo(f"bodies: {len(town_bodies)} town/street, {len(village_bodies)} village/community")

    town_pool = _pool(session, TOWN_KEYWORDS, types=("07", "05", "20", "10"), want=25)
    village_pool = _pool(session, VILLAGE_KEYWORDS, types=("20",), want=12)
    for item in town_pool:
        _allow_levels(session, item, "4,5,6" if item.task_type == "20" else "4,5")
    for item in village_pool:
        _allow_levels(session, item, "4,5,6")

    # Industrial parks (类似乡级单位, 管理委员会) have no residents: they claim nothing and decline.
    parks = [b for b in town_bodies if b.name.endswith("管理委员会")]
    towns_and_streets = [b for b in town_bodies if b not in parks]
    town_entries = _claim_round_robin(session, towns_and_streets, town_pool, TOWN_ITEMS_EACH, TOWN_CLAIMS)
    step = max(1, len(village_bodies) // -(-VILLAGE_CLAIMS // VILLAGE_ITEMS_EACH))
    chosen_villages = village_bodies[::step]
    village_entries = _claim_round_robin(session, chosen_villages, village_pool, VILLAGE_ITEMS_EACH,
                                         VILLAGE_CLAIMS)
    summary.town_claims, summary.village_claims = len(town_entries), len(village_entries)

    bodies = {d.id: d for d in town_bodies + village_bodies}
    divisions = {d.code: d for d in towns + villages}
    flagged = 0
    for i, entry in enumerate(town_entries + village_entries):
        body = bodies[entry.department_id]
        place = divisions[body.division_code]
        # Only the six power types of the Jiangsu scope can be 不见面 (catalog.norules).
        passes = i % 4 == 0 and entry.level == "5" and entry.task_type in NO_CONTACT_SCOPE_TYPES
        _complete(session, entry, place, passes=passes, seed=i)
        if passes:
            entry_services.set_no_contact(session, SYSTEM, id_of(entry), True)
            flagged += 1
        # A few stay as drafts or submissions so the town and village operators have work.
        if i % 9 == 4:
            continue
        entry_services.submit_entry(session, SYSTEM, id_of(entry))
        if i % 9 == 7:
            continue
        entry_services.approve_entry(session, SYSTEM, id_of(entry))
    echo(f"claims: {len(town_entries)} town-level, {len(village_entries)} village-level")

    flagged += _revise_district_entries(session, district)
    filled = elements_demo.complete_district_entries(session, _fill_revision)
    echo(f"district entries given a demo element set (示例内容): {filled} more")
    summary.no_contact = flagged
    echo(f"no-contact entries flagged through the rule: {flagged}")

    summary.declined = _decline_in_parks(session, parks, town_pool)
    summary.not_applicable = len(session.exec(select(ImplementationEntry.id).where(
        ImplementationEntry.level == "4", col(ImplementationEntry.applicable).is_(False))).all())
    echo(f"declined claims: {summary.declined}; district items not applicable here "
         f"(they name another province): {summary.not_applicable}")
    # No real Jiangsu or Taizhou basic catalogue is available (data/README.md, "Gaps"), so the demo
    # imports no upper level: the 三级四同 report says it cannot compare rather than show made-up data.

    demo_department = _demo_department(session)
    _leave_work_for(session, demo_department)
    village_with_claims = next(
        (divisions[bodies[e.department_id].division_code] for e in village_entries
         if e.division_code.startswith(DEMO_TOWN[:9])),
        divisions[bodies[village_entries[0].department_id].division_code] if village_entries else villages[0],
    )
    return _create_users(session, demo_department, village_with_claims)


def _uscc_for_division(division: Division, level: str) -> str:
    """A demo USCC passing both checks: 11 = 机关 (town/street government), 54 = 基层群众性自治组织."""
    head = ("11" if level == "5" else "54") + division.code[:6]
    body = ("MB" if level == "5" else "MC") + division.code[6:12]
    return make_uscc(head, body)


def _body_name(division: Division, level: str) -> str:
    name = division.name
    if level == "5":
        if name.endswith("街道"):
            return f"{name}办事处"
        if name.endswith(("镇", "乡")):
            return f"{name}人民政府"
        return f"{name}管理委员会"
    if name.endswith("村"):
        return f"{name}村民委员会"
    return f"{name}居民委员会"


def _body(session: Session, division: Division, level: str) -> Department:
    uscc = _uscc_for_division(division, level)
    found = session.exec(select(Department).where(Department.uscc == uscc)).first()
    if found is not None:
        return found
    return services.create_department(session, SYSTEM, name=_body_name(division, level), uscc=uscc,
                                      level=level, division_code=division.code)


def _pool(session: Session, keywords: Sequence[str], *, types: Sequence[str], want: int) -> list[CatalogItem]:
    """Real items whose names fit a town or village window, one per keyword first, then the rest."""
    found: list[CatalogItem] = []
    seen: set[int] = set()
    rounds: list[list[CatalogItem]] = []
    # Items the district recorded as not applicable here (they name another province) stay out.
    not_here = select(ImplementationEntry.item_id).where(col(ImplementationEntry.applicable).is_(False))
    for word in keywords:
        rows = list(session.exec(
            select(CatalogItem).where(col(CatalogItem.name).contains(word),
                                      col(CatalogItem.task_type).in_(types),
                                      col(CatalogItem.county_only).is_(False),
                                      col(CatalogItem.id).not_in(not_here))
            .order_by(CatalogItem.code)
        ))
        rounds.append(rows)
    depth = 0
    while len(found) < want and any(len(r) > depth for r in rounds):
        for rows in rounds:
            if depth < len(rows) and rows[depth].id not in seen and len(found) < want:
                found.append(rows[depth])
                seen.add(rows[depth].id or 0)
        depth += 1
    return found


def _allow_levels(session: Session, item: CatalogItem, levels: str) -> None:
    wanted = sorted(set(levels.split(",")) | set(item.use_levels.split(",")) - {""})
    if ",".join(wanted) != item.use_levels:
        services.update_item(session, SYSTEM, id_of(item), use_levels=",".join(wanted))


def _claim_round_robin(session: Session, bodies: Sequence[Department], pool: Sequence[CatalogItem],
                       each: int, total: int) -> list[ImplementationEntry]:
    entries: list[ImplementationEntry] = []
    if not pool:
        return entries
    for b, body in enumerate(bodies):
        for k in range(each):
            if len(entries) >= total:
                return entries
            item = pool[(b * each + k) % len(pool)]
            exists = session.exec(select(ImplementationEntry).where(
                ImplementationEntry.item_id == item.id, ImplementationEntry.department_id == body.id)).first()
            if exists is not None:
                continue
            entries.append(
                entry_services.claim_item(session, SYSTEM, item_id=id_of(item), department_id=id_of(body))
            )
    return entries


def _phone(seed: int) -> str:
    return f"0523-8692{seed % 10000:04d}"


def _complete(session: Session, entry: ImplementationEntry, place: Division | None, *, passes: bool,
              seed: int) -> None:
    """Fill a draft entry's local elements: either passing the no-contact rule or needing one visit."""
    fields, materials = _elements(entry, place, passes=passes, seed=seed)
    entry_services.update_entry(
        session, SYSTEM, id_of(entry), fields=fields, materials=materials,
        steps=elements_demo.steps_for(entry, fields["promise_days"]), faqs=elements_demo.faqs_for(entry),
    )
    elements_demo.mark(session, entry)


def _fill_revision(session: Session, entry: ImplementationEntry, *, seed: int) -> None:
    """Fill the open revision of a published district entry with a demo element set (not 不见面)."""
    fields, materials = _elements(entry, None, passes=False, seed=seed)
    revisions.update_revision(session, SYSTEM, id_of(entry), fields=fields, materials=materials,
                              steps=elements_demo.steps_for(entry, fields["promise_days"]),
                              faqs=elements_demo.faqs_for(entry))
    elements_demo.mark(session, entry)


def _revise(session: Session, entry: ImplementationEntry, *, passes: bool, seed: int, reason: str) -> None:
    """Open a revision of a published entry with its elements filled (the flag set when it passes);
    the entry stays published until the revision is approved."""
    fields, materials = _elements(entry, None, passes=passes, seed=seed)
    revisions.open_revision(session, SYSTEM, id_of(entry), reason=reason)
    revisions.update_revision(session, SYSTEM, id_of(entry), fields={**fields, "no_contact": passes},
                              materials=materials,
                              steps=elements_demo.steps_for(entry, fields["promise_days"]),
                              faqs=elements_demo.faqs_for(entry))


def _elements(entry: ImplementationEntry, place: Division | None, *, passes: bool,
              seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An entry's local elements: either passing the no-contact rule or needing one visit."""
    where = place.name if place is not None else "高港区"
    hall = f"{where}便民服务中心" if entry.level == "5" else f"{where}便民服务代办点"
    fields: dict[str, Any] = {
        "accept_conditions": "申请人户籍或居住地在本辖区，符合相关政策规定条件。",
        "anticipate_days": 20,
        "anticipate_unit": "working",
        "promise_days": 5 if seed % 3 else 0,
        "promise_unit": "working",
        "project_type": "2" if seed % 3 else "1",
        "window_address": f"{hall}综合受理窗口",
        "opening_hours": "周一至周五 8:30-12:00，13:30-17:30（法定节假日除外）",
        "phone": _phone(seed),
        "keywords": "",
    }
    if passes:
        fields.update({
            "visits": 0,
            "visits_reason": None,
            "handle_forms": "window,online",
            "online_depth": "1,2,3,4,5,6",
            "online_url": "https://www.jszwfw.gov.cn/",
            "result_delivery": "online,post",
        })
        materials = [
            {"name": "申请表", "form": "electronic", "required": True, "copies": 1},
            {"name": "居民身份证", "form": "both", "required": True, "copies": 1},
        ]
    else:
        fields.update({
            "visits": 1,
            "visits_reason": "需现场核验原件并签字确认",
            "handle_forms": "window",
            "online_depth": "1,2",
            "online_url": None,
            "result_delivery": "window",
        })
        materials = [
            {"name": "申请表", "form": "paper", "required": True, "copies": 1},
            {"name": "居民身份证原件及复印件", "form": "paper", "required": True, "copies": 1},
            {"name": "户口簿复印件", "form": "paper", "required": False, "copies": 1},
        ]
    fields |= elements_demo.element_set(entry, passes=passes, seed=seed)
    fields |= {"anticipate_unit": "working", "promise_unit": "working"}
    return fields, elements_demo.material_elements(materials)


def _revise_district_entries(session: Session, district: str) -> int:
    """Revise some published district entries: a set that passes the rule (flagged), a set that fails."""
    rows = list(session.exec(
        select(ImplementationEntry).where(
            ImplementationEntry.level == "4",
            ImplementationEntry.status == EntryStatus.PUBLISHED.value,
            col(ImplementationEntry.applicable).is_(True),
            col(ImplementationEntry.task_type).in_(sorted(NO_CONTACT_SCOPE_TYPES)),
        ).order_by(col(ImplementationEntry.id))
    ))
    if not rows:
        return 0
    stride = max(1, len(rows) // (NO_CONTACT_DISTRICT + CONTACT_DISTRICT))
    chosen = rows[::stride][: NO_CONTACT_DISTRICT + CONTACT_DISTRICT]
    flagged = 0
    for i, entry in enumerate(chosen):
        passes = i < NO_CONTACT_DISTRICT
        _revise(session, entry, passes=passes, seed=1000 + i, reason="完善实施要素（演示数据）")
        revisions.submit_revision(session, SYSTEM, id_of(entry))
        revisions.approve_revision(session, SYSTEM, id_of(entry))
        elements_demo.mark(session, entry)  # its published elements are now the demo's
        flagged += passes
    return flagged


def _decline_in_parks(session: Session, parks: Sequence[Department], pool: Sequence[CatalogItem]) -> int:
    """Industrial parks (类似乡级单位) record two residents' services as not applicable, with the reason."""
    declined = 0
    services_for_residents = [i for i in pool if i.task_type == "20"][:2]
    for park in parks:
        for item in services_for_residents:
            exists = session.exec(select(ImplementationEntry).where(
                ImplementationEntry.item_id == item.id, ImplementationEntry.department_id == park.id)).first()
            if exists is not None:
                continue
            entry_services.decline_item(session, SYSTEM, item_id=id_of(item), department_id=id_of(park),
                                  reason="园区无常住居民，本事项由所在街道便民服务中心办理")
            declined += 1
    return declined


def _demo_department(session: Session) -> Department:
    """The district department the demo editor and reviewer belong to (民政 if present)."""
    county = select(Department).where(Department.level == "4")
    for word in ("民政", "人社", "行政审批"):
        query = county.where(col(Department.name).contains(word)).order_by(col(Department.id))
        found = session.exec(query).first()
        if found is not None:
            return found
    counted = session.exec(
        select(Department, sa.func.count(col(ImplementationEntry.id)))
        .join(ImplementationEntry, col(ImplementationEntry.department_id) == Department.id)
        .where(Department.level == "4").group_by(col(Department.id)).order_by(sa.desc(sa.func.count()))
    ).first()
    if counted is None:
        raise RuntimeError("the import created no district department")
    return counted[0]


def _leave_work_for(session: Session, department: Department) -> None:
    """Two revisions in progress in the demo department (the entries stay published meanwhile):
    one draft, one submitted for review."""
    rows = list(session.exec(
        select(ImplementationEntry).where(
            ImplementationEntry.department_id == department.id,
            ImplementationEntry.status == EntryStatus.PUBLISHED.value,
            col(ImplementationEntry.no_contact).is_(False),
        ).order_by(col(ImplementationEntry.id).desc()).limit(2)
    ))
    for i, entry in enumerate(rows):
        # 不见面 only where the rule's scope (the six power types) allows it.
        _revise(session, entry, passes=entry.task_type in NO_CONTACT_SCOPE_TYPES, seed=2000 + i,
                reason="修订实施要素（演示数据）")
        if i == 1:
            revisions.submit_revision(session, SYSTEM, id_of(entry))


# ---------------------------------------------------------------- users and credentials


def _demo_users(session: Session) -> dict[str, User]:
    names = [u[0] for u in ROLE_USERS]
    return {u.username: u for u in session.exec(select(User).where(col(User.username).in_(names)))}


def _password() -> str:
    return secrets.token_urlsafe(12)


def _create_users(session: Session, department: Department, village: Division) -> list[dict[str, str]]:
    creds = []
    for username, display, role, scope in ROLE_USERS:
        password = _password()
        kwargs: dict[str, Any] = {}
        if scope == "department":
            kwargs["department_id"] = department.id
            display = display.replace("区民政局", department.name)
        elif scope == "town":
            kwargs["division_code"] = DEMO_TOWN
        elif scope == "village":
            kwargs["division_code"] = village.code
            display = f"{village.name}经办人"
        user = user_admin.create_user(session, SYSTEM, user_admin.NewUser(
            username=username, password=password, display_name=display, role=role, **kwargs))[0]
        token = user_admin.issue_token(session, SYSTEM, id_of(user), "演示令牌")[1]
        creds.append(_cred(user, password, token))
    return creds


def _reset_credentials(session: Session, users: dict[str, User]) -> list[dict[str, str]]:
    creds = []
    now = utcnow()
    for username, _display, _role, _scope in ROLE_USERS:
        user = users.get(username)
        if user is None:
            continue
        password = _password()
        user.password_hash = hash_password(password)
        user.is_active = True
        clear_login_failures(session, user.username)
        end_sessions(session, id_of(user))
        for old in session.exec(select(ApiToken).where(ApiToken.user_id == user.id,
                                                       col(ApiToken.revoked_at).is_(None))):
            old.revoked_at = now
        session.flush()
        record(session, actor=SYSTEM, action="user.reset_demo_credentials", entity_type="user",
               entity_id=user.id)
        token = user_admin.issue_token(session, SYSTEM, id_of(user), "演示令牌")[1]
        creds.append(_cred(user, password, token))
    return creds


def _cred(user: User, password: str, token: str) -> dict[str, str]:
    return {
        "role": user.role,
        "username": user.username,
        "password": password,
        "token": token,
        "display_name": user.display_name,
        "department_id": "" if user.department_id is None else str(user.department_id),
        "division_code": user.division_code or "",
    }


def _write_credentials(path: Path, creds: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"users": creds}, fh, ensure_ascii=False, indent=2)
    tmp.replace(path)
