"""Licence part of the demo: licence types from the real data, demo departments, a few thousand licences.

Idempotent: types are added only when missing, licences only when the demo department has none.
Types: the national ones through licenses.reference (data/elicence_type_codes_observed.csv, real
codes), and the local ones of data/licence_types_from_items_511602.csv (real names; their codes are
demo codes under a fabricated district authority code, marked as such in authority_name).
"""

from __future__ import annotations

import csv
import json
import os
import secrets
from typing import Any

from sqlmodel import Session, col, select

from catalog.codes import make_uscc
from catalog.models import Department, Division, ImplementationEntry
from catalog.services import create_department
from core import users as user_admin
from core.auth import SYSTEM, ApiToken, Principal, Role, User, hash_password
from core.config import PROJECT_ROOT, Settings
from core.db import Database, id_of
from demo.synthetic_licences import synthetic_rows
from licenses.bulk import run_bulk
from licenses.grants import grant_licence_rights
from licenses.models import Licence, LicenceType, LicenceTypeEntry
from licenses.reference import load_reference_types
from licenses.signing import KeyStore
from licenses.types import create_licence_type, link_type_entry
from licenses.verification import publish_keys

DATA = PROJECT_ROOT / "data"
DEMO_LICENCES = 3000
DEMO_CODE_NOTE = "演示代码，非官方证照类型代码"
DEMO_USER = {"username": "licence_clerk", "display_name": "审批局证照专员"}
COUNTY_CODE = "321203000000"

# District departments that issue the demo licences: reused from the catalogue demo when it created
# them (matched by a word of the name), else created (USCCs fabricated with valid check digits).
DEPARTMENTS = [
    ("高港区行政审批局", "11321203", "MB158001"),
    ("高港区人力资源和社会保障局", "11321203", "01414002"),
    ("高港区民政局", "11321203", "01414003"),
]
DEPARTMENT_WORDS = [("行政审批",), ("人社", "人力资源"), ("民政",)]
PERSON_WORDS = (
    "卡",
    "结婚",
    "离婚",
    "出生",
    "残疾",
    "身份证",
    "驾驶证",
    "资格",
    "职业",
    "执业",
    "教师",
    "医师",
    "护士",
    "户口",
    "居住证",
    "老年",
    "独生子女",
    "献血",
    "无犯罪",
    "学历",
    "毕业",
    "退役",
    "优待",
    "从业人员",
    "体检",
)
ORG_FACE = [
    {"key": "legal_representative", "label": "法定代表人（负责人）", "type": "string", "required": False},
    {"key": "address", "label": "住所（经营场所）", "type": "string", "required": True},
    {"key": "scope", "label": "许可（经营）范围", "type": "text", "required": False},
]
PERSON_FACE = [
    {"key": "gender", "label": "性别", "type": "enum", "choices": ["男", "女"], "required": False},
    {"key": "address", "label": "住址", "type": "string", "required": False},
]


# Holders that are organisations whatever else the name says (医疗机构执业许可证 contains 执业).
ORG_WORDS = ("单位", "机构", "组织", "企业", "公司", "团体", "学校", "医院", "场所")


def holder_type_for(name: str) -> str:
    if any(word in name for word in ORG_WORDS):
        return "001"
    if any(word in name for word in PERSON_WORDS):
        return "111"
    if name.endswith(("许可证", "执照", "登记证", "批准书", "合格证")):
        return "001"
    return "111" if name.endswith(("证书", "证明", "证")) else "001"


def validity_for(name: str) -> int | None:
    if "营业执照" in name or "结婚" in name or "出生" in name or "身份证" in name:
        return None
    if "许可证" in name:
        return 5
    if "社会保障卡" in name:
        return 10
    if "驾驶证" in name:
        return 6
    return None


def ensure_division(session: Session) -> None:
    if session.get(Division, COUNTY_CODE) is None:
        session.add(Division(code=COUNTY_CODE, name="高港区", level="county", kind="市辖区"))
        session.flush()


def ensure_department(session: Session, name: str, head: str, org8: str) -> Department:
    dept = session.exec(select(Department).where(Department.name == name)).first()
    if dept is None:
        ensure_division(session)
        dept = create_department(
            session, SYSTEM, name=name, uscc=make_uscc(head, org8), level="4", division_code=COUNTY_CODE
        )
    return dept


def find_or_create_department(session: Session, index: int) -> Department:
    county = select(Department).where(Department.level == "4")
    for word in DEPARTMENT_WORDS[index]:
        found = session.exec(
            county.where(col(Department.name).contains(word)).order_by(col(Department.id))
        ).first()
        if found is not None:
            return found
    return ensure_department(session, *DEPARTMENTS[index])


def link_entries(session: Session) -> int:
    """Link types to the catalogue's implementation entries: entries whose name names the licence
    produce it; a few entries of other departments accept 营业执照 / 社会保障卡 as a material."""
    linked = 0
    have: set[tuple[int | None, str, str]] = {
        (x.licence_type_id, x.task_code, x.role) for x in session.exec(select(LicenceTypeEntry)).all()
    }

    def add(lt: LicenceType, entry: ImplementationEntry, role: str, material: str | None = None) -> None:
        nonlocal linked
        if (lt.id, entry.task_code, role) in have:
            return
        have.add((lt.id, entry.task_code, role))
        link_type_entry(
            session, SYSTEM, lt.code, task_code=entry.task_code, role=role, material_name=material
        )
        linked += 1

    for lt in session.exec(select(LicenceType)).all():
        word = lt.name.split("（")[0]
        if len(word) < 3:
            continue
        for entry in session.exec(
            select(ImplementationEntry)
            .where(col(ImplementationEntry.name).contains(word))
            .order_by(col(ImplementationEntry.id))
            .limit(5)
        ).all():
            add(lt, entry, "produces")
    for name in ("营业执照", "社会保障卡"):
        found = session.exec(select(LicenceType).where(LicenceType.name == name)).first()
        if found is None:
            continue
        lt = found
        producers = {
            x.task_code[:18]
            for x in session.exec(
                select(LicenceTypeEntry).where(
                    LicenceTypeEntry.licence_type_id == lt.id, LicenceTypeEntry.role == "produces"
                )
            ).all()
        }
        for entry in session.exec(
            select(ImplementationEntry)
            .where(ImplementationEntry.level == "4")
            .order_by(col(ImplementationEntry.id))
            .limit(40)
        ).all():
            if entry.task_code[:18] not in producers:
                add(lt, entry, "accepts", f"{name}复印件")
                producers.add(entry.task_code[:18])
    session.flush()
    return linked


def load_types(session: Session, actor: Principal = SYSTEM) -> int:
    """Add the national reference types and the demo's local types (real names, demo codes) that are not
    there yet; returns how many were added."""
    # The national types come through the production loader (the inferred codes too: the demo links
    # 营业执照 to entries); only the local types below carry made-up demo codes.
    added = load_reference_types(session, actor, include_inferred=True)
    existing = set(session.exec(select(LicenceType.code)).all())
    names = set(session.exec(select(LicenceType.name)).all())  # 结婚证 is in both lists: one type
    authority = make_uscc("11321203", "MB158001")  # the demo 行政审批局 defines the local types
    with (DATA / "licence_types_from_items_511602.csv").open(encoding="utf-8") as fh:
        for seq, row in enumerate(csv.DictReader(fh), start=1):
            code = f"{authority}{seq:03d}"
            if code in existing:
                continue
            name = row["licence_name"].strip("《》")
            if name in names:
                continue
            names.add(name)
            hct = holder_type_for(name)
            create_licence_type(
                session,
                actor,
                {
                    "code": code,
                    "name": name,
                    "authority_name": f"{row['issuing_department_in_source']}（{DEMO_CODE_NOTE}）",
                    "authority_level": "区县级",
                    "holder_code_type": hct,
                    "validity_years": validity_for(name),
                    "face_schema": PERSON_FACE if hct == "111" else ORG_FACE,
                },
            )
            existing.add(code)
            added += 1
    return added


def ensure_clerk(session: Session, dept: Department, settings: Settings) -> User:
    """The demo 证照经办 (licence rights only, no catalogue rights) with a password and an API token.

    New credentials are issued whenever the credentials file lacks the clerk's password or token;
    an older demo's clerk (a catalogue editor) becomes a licence clerk.
    """
    user = session.exec(select(User).where(User.username == DEMO_USER["username"])).first()
    path = settings.instance_dir / "demo_credentials.json"
    data: dict[str, Any] = {"users": []}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            data = {"users": []}
    users = data.setdefault("users", [])
    entry = next((u for u in users if u.get("username") == DEMO_USER["username"]), None)
    if user is not None and user.role != Role.LICENCE_CLERK.value:
        user.role = Role.LICENCE_CLERK.value
        session.add(user)
        session.flush()
    if user is not None and entry is not None and entry.get("token"):
        return user
    password = secrets.token_urlsafe(12)
    if user is None:
        user = user_admin.create_user(
            session, SYSTEM, user_admin.NewUser(
            username=DEMO_USER["username"],
            password=password,
            display_name=DEMO_USER["display_name"],
            role=Role.LICENCE_CLERK,
            department_id=dept.id,
        ))[0]
    else:
        user.password_hash = hash_password(password)
        session.add(user)
        session.flush()
        for old in session.exec(
            select(ApiToken).where(ApiToken.user_id == user.id, col(ApiToken.revoked_at).is_(None))
        ).all():
            user_admin.revoke_token(session, SYSTEM, id_of(old))
    token = user_admin.issue_token(session, SYSTEM, id_of(user), "演示令牌")[1]
    if entry is not None:
        users.remove(entry)
    users.append(
        {
            "role": Role.LICENCE_CLERK.value,
            "department": dept.name,
            "username": DEMO_USER["username"],
            "password": password,
            "token": token,
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)
    return user


def load(db: Database, settings: Settings, count: int = DEMO_LICENCES) -> None:
    """Idempotent demo load (called by `flask demo load` after the catalogue demo)."""
    with db.transaction() as session:
        load_types(session)
        depts = [find_or_create_department(session, i) for i in range(len(DEPARTMENTS))]
        link_entries(session)
        clerk = ensure_clerk(session, depts[0], settings)
        dept_ids = [d.id for d in depts]
        has_any = session.exec(select(LicenceType.id)).first() is not None
        already = session.exec(select(Licence.id).where(Licence.issuer_department_id == depts[0].id)).first()
        types = list(session.exec(select(LicenceType).order_by(col(LicenceType.id))).all())
        # The clerk issues the first department's share of the types, and only those.
        if types:
            grant_licence_rights(
                session, SYSTEM, user_id=clerk.id or 0, type_codes=[t.code for t in types[0 :: len(depts)]]
            )
        principal = Principal.of(clerk)
    keystore = KeyStore(settings.instance_dir / "licence_keys")
    if already is not None or not has_any:
        with db.transaction() as session:
            publish_keys(session, keystore)  # a demo loaded before keys were published at issue
        return
    per_dept = count // len(dept_ids)
    for n, dept_id in enumerate(dept_ids):
        share = types[n :: len(dept_ids)]
        run_bulk(
            db,
            principal if n == 0 else SYSTEM,
            dept_id or 0,
            synthetic_rows(share, per_dept, year=2018 + n % 3, seed=7000 + n),
            source="demo",
            default_area=settings.district_code,
            keystore=keystore,
        )
