"""The national element set (issue #12 items 1-2): API and form round trips, Chinese validation of every
field in one round, "not recorded" on the public page, and uploads that are checked by content."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlmodel import select

from catalog import entries as entry_services
from catalog import revisions
from catalog.element_models import EntryAttachment
from catalog.models import EntryVersion
from core.auth import SYSTEM, Role
from core.errors import Invalid
from tests.conftest import sign_in
from tests.factories.catalog import COMPLETE_FIELDS, make_department, make_item, make_user, published_entry

ELEMENT_VALUES: dict[str, Any] = {
    "subject_nature": "statutory",
    "entrusted_department": "泰州市民政局",
    "joint_bodies": "区财政局",
    "power_source": "own",
    "handle_item": "new",
    "service_objects": "1,2",
    "special_procedure": "需公示 7 日",
    "anticipate_explain": "自受理之日起计算",
    "promise_explain": "材料齐全当场受理",
    "charges": True,
    "in_hall": True,
    "handle_area": "city",
    "quantity_limit": "无数量限制",
    "result_type": "licence",
    "result_name": "低保证",
    "complaint_phone": "12345",
    "review_channel": "泰州市高港区人民政府",
    "litigation_channel": "泰州市高港区人民法院",
    "mobile_url": "https://m.jszwfw.gov.cn/item/1",
    "pay_online": False,
}
STEPS = [
    {"name": "受理", "post": "综合窗口", "days": 1, "unit": "working"},
    {"name": "审核", "post": "业务科室", "days": 3, "unit": "working"},
]
FAQS = [{"question": "可以代办吗？", "answer": "可以，代办人须携带授权委托书。"}]


def pdf_bytes(text: str = "sample") -> bytes:
    return f"%PDF-1.4\n1 0 obj<<>>endobj\n% {text}\ntrailer<<>>\n%%EOF\n".encode()


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def draft(session):
    dept = make_department(session, "区民政局")
    editor = make_user(session, Role.DEPT_EDITOR, department=dept)
    entry = entry_services.claim_item(session, SYSTEM, item_id=make_item(session).id, department_id=dept.id)
    session.commit()
    return {"dept": dept, "entry": entry, "user": editor[0], "token": editor[2]}


def call(client, method: str, url: str, token: str | None = None, json: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.open(url, method=method, headers=headers, json=json)


def upload(client, token: str, entry_id: int, filename: str, data: bytes) -> Any:
    body = {"filename": filename, "content_base64": base64.b64encode(data).decode()}
    return call(client, "POST", f"/api/v1/entries/{entry_id}/attachments", token, body)


def _publish_revision(session: Any, entry_id: int, **change: Any) -> None:
    """Change a published entry the way departments do: a revision, submitted and approved."""
    revisions.open_revision(session, SYSTEM, entry_id, reason="补充实施要素")
    revisions.update_revision(session, SYSTEM, entry_id, **change)
    revisions.submit_revision(session, SYSTEM, entry_id)
    revisions.approve_revision(session, SYSTEM, entry_id)


def test_a_fresh_claim_records_nothing(session, draft):
    entry = draft["entry"]
    for name in (
        "visits",
        "project_type",
        "result_delivery",
        "anticipate_unit",
        "promise_unit",
        "accept_conditions",
        "charges",
        *ELEMENT_VALUES,
    ):
        assert getattr(entry, name) is None, name


def test_every_element_round_trips_through_the_api(client, session, draft):
    entry, token = draft["entry"], draft["token"]
    blank = upload(client, token, entry.id, "申请表.pdf", pdf_bytes())
    assert blank.status_code == 201, blank.get_json()
    sample = upload(client, token, entry.id, "样表.png", png_bytes())
    assert sample.status_code == 201, sample.get_json()
    material = {
        "name": "申请表",
        "form": "paper",
        "required": True,
        "copies": 2,
        "source_channel": "applicant",
        "original": "original",
        "accept_standard": "填写完整并签字",
        "basis": "《社会救助暂行办法》",
        "blank_form": blank.get_json()["id"],
        "sample": sample.get_json()["id"],
    }
    body = {
        **ELEMENT_VALUES,
        "result_sample": sample.get_json()["id"],
        "materials": [material],
        "steps": STEPS,
        "faqs": FAQS,
        "fees": [{"name": "工本费", "amount_fen": 1000, "basis": "苏价费"}],
    }
    response = call(client, "PATCH", f"/api/v1/entries/{entry.id}", token, body)
    assert response.status_code == 200, response.get_json()
    out = call(client, "GET", f"/api/v1/entries/{entry.id}", token).get_json()
    for key, value in ELEMENT_VALUES.items():
        assert out[key] == value, key
    assert out["result_sample"] == sample.get_json()["id"]
    assert {k: out["materials"][0][k] for k in material} == material
    assert [{k: s[k] for k in ("name", "post", "days", "unit")} for s in out["steps"]] == STEPS
    assert out["faqs"] == FAQS
    assert {a["filename"] for a in out["attachments"]} == {"申请表.pdf", "样表.png"}
    session.expire_all()
    version = session.exec(
        select(EntryVersion).where(EntryVersion.entry_id == entry.id).order_by(EntryVersion.id.desc())  # type: ignore[union-attr]  # SQLModel column typed as int
    ).first()
    assert version is not None
    assert version.snapshot["steps"][1]["name"] == "审核"
    assert version.snapshot["faqs"][0]["question"] == "可以代办吗？"
    assert version.snapshot["service_objects"] == "1,2"

    # Clearing an element records "not recorded" again, not a default.
    response = call(
        client, "PATCH", f"/api/v1/entries/{entry.id}", token, {"charges": None, "handle_area": None}
    )
    assert response.status_code == 200
    assert response.get_json()["charges"] is None
    assert response.get_json()["handle_area"] is None


def test_bad_elements_are_all_named_in_one_answer(client, draft):
    body = {
        "subject_nature": "king",
        "charges": "maybe",
        "mobile_url": "x" * 600,
        "materials": [{"name": "申请表", "copies": 0, "source_channel": "shop"}],
        "steps": [{"name": "", "days": -1}],
        "faqs": [{"question": "?"}],
    }
    response = call(client, "PATCH", f"/api/v1/entries/{draft['entry'].id}", draft["token"], body)
    assert response.status_code == 422
    details = response.get_json()["details"]
    assert "实施主体性质" in str(details["subject_nature"])
    assert "是否收费" in str(details["charges"])
    assert "移动端办理地址" in str(details["mobile_url"])
    # Row errors are keyed by their path, one key per field (the schema's and the service's alike).
    assert "份数" in str(details["materials[0].copies"])
    assert "来源渠道" in str(details["materials[0].source_channel"])
    assert {k for k in details if k.startswith("steps[0].")} == {"steps[0].name", "steps[0].days"}
    assert "faqs[0].answer" in details


def test_the_service_refuses_bad_elements_with_every_field_named(session, draft):
    with pytest.raises(Invalid) as caught:
        entry_services.update_entry(
            session,
            SYSTEM,
            draft["entry"].id,
            fields={"service_objects": "1,77", "complaint_phone": "call me", "in_hall": "perhaps"},
            materials=[{"name": "申请表", "copies": 0, "blank_form": 999999}],
            steps=[{"name": "受理", "unit": "fortnight"}],
            faqs=[{"question": "问", "answer": ""}],
        )
    details = caught.value.details
    assert "服务对象" in details["service_objects"][0]
    assert "监督投诉电话" in details["complaint_phone"][0]
    assert "是否进驻政务大厅" in details["in_hall"][0]
    assert "份数" in details["materials[0].copies"][0]
    assert "空白表格" in details["materials[0].blank_form"][0]
    assert "steps[0].unit" in details
    assert "faqs[0].answer" in details


def test_an_entry_cannot_point_to_another_entrys_file(client, session, draft):
    other = published_entry(session, draft["dept"])
    session.commit()
    foreign = upload(client, draft["token"], other.id, "表.pdf", pdf_bytes())
    assert foreign.status_code == 201
    response = call(
        client,
        "PATCH",
        f"/api/v1/entries/{draft['entry'].id}",
        draft["token"],
        {"result_sample": foreign.get_json()["id"]},
    )
    assert response.status_code == 422
    assert "审批结果样本" in response.get_json()["details"]["result_sample"][0]


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("申请表.pdf", b"#!/bin/sh\nrm -rf /\n"),  # a script renamed
        ("样表.png", b"<html><script>alert(1)</script></html>"),  # HTML dressed as an image
        ("表.docx", b"PK\x03\x04" + b"\x00" * 40),  # a zip that is not a Word document
        ("申请表.pdf", png_bytes()),  # a real image under a PDF name
        ("run.exe", pdf_bytes()),  # a real PDF under a type that is not allowed
        ("page.html", b"<html></html>"),
    ],
)
def test_a_disguised_or_unlisted_file_is_refused(client, session, draft, filename, data):
    response = upload(client, draft["token"], draft["entry"].id, filename, data)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["details"]["file"]
    assert session.exec(select(EntryAttachment)).first() is None


def test_a_file_larger_than_the_limit_is_refused(client, draft):
    data = pdf_bytes() + b"0" * (5 * 1024 * 1024)
    response = upload(client, draft["token"], draft["entry"].id, "大.pdf", data + b"\n%%EOF\n")
    assert response.status_code in (413, 422)


def test_files_are_served_as_downloads_and_drafts_stay_private(client, session, draft):
    created = upload(client, draft["token"], draft["entry"].id, "申请表（空白）.pdf", pdf_bytes())
    file_id = created.get_json()["id"]
    assert client.get(f"/files/{file_id}").status_code == 404  # a draft's file is not public
    sign_in(client, draft["user"].id)
    response = client.get(f"/files/{file_id}")
    assert response.status_code == 200
    assert response.data == pdf_bytes()
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]


def test_another_department_cannot_upload(client, session, draft):
    other = make_department(session, "区公安分局")
    token = make_user(session, Role.DEPT_EDITOR, department=other)[2]
    session.commit()
    response = upload(client, token, draft["entry"].id, "表.pdf", pdf_bytes())
    assert response.status_code in (403, 404)


def test_public_page_says_what_is_missing_and_shows_no_badge_from_missing_data(client, session):
    dept = make_department(session, "区民政局")
    item = make_item(session, name="最低生活保障")
    entry = entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=dept.id)
    entry_services.update_entry(
        session,
        SYSTEM,
        entry.id,
        fields={
            "anticipate_days": 20,
            "promise_days": 5,
            "project_type": "2",
            "window_address": "区政务服务中心",
        },
    )
    entry_services.submit_entry(session, SYSTEM, entry.id)
    entry_services.approve_entry(session, SYSTEM, entry.id)
    session.commit()
    html = client.get(f"/entries/{entry.task_code}").get_data(as_text=True)
    assert "最多跑一次" not in html
    assert "零跑腿" not in html
    assert "不收费" not in html
    assert html.count("信息待补充") >= 10
    assert "区政务服务中心" in html
    # The citizen's reading order: what to bring, how long, how much, where, online, result, complain.
    order = [
        html.index(f'id="{section}"')
        for section in ("materials", "time", "fees", "where", "online", "result", "complain")
    ]
    assert order == sorted(order)


def test_public_page_shows_recorded_elements(client, session):
    dept = make_department(session, "区民政局")
    entry = published_entry(session, dept)
    _publish_revision(session, entry.id, fields={**ELEMENT_VALUES, "charges": False}, steps=STEPS, faqs=FAQS)
    session.commit()
    html = client.get(f"/entries/{entry.task_code}").get_data(as_text=True)
    for text in (
        "不收费",
        "最多跑一次",
        "12345",
        "泰州市高港区人民法院",
        "可以代办吗？",
        "业务科室",
        "低保证",
        "全市通办",
        "法定机关",
    ):
        assert text in html, text
    assert COMPLETE_FIELDS["window_address"] in html


FORM_BASE = {
    "accept_conditions": "申请人为本区居民",
    "anticipate_days": "20",
    "anticipate_unit": "working",
    "promise_days": "5",
    "promise_unit": "working",
    "project_type": "2",
    "visits": "1",
    "visits_reason": "需现场核验原件",
    "result_delivery": ["window"],
    "window_address": "高港区政务服务中心 3 号窗口",
}


def form_of(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif key == "service_objects":
            out[key] = value.split(",")
        else:
            out[key] = str(value)
    return out


def test_every_element_round_trips_through_the_staff_form(client, session, draft):
    entry = draft["entry"]
    sign_in(client, draft["user"].id)
    page = client.get(f"/staff/entries/{entry.id}/edit").get_data(as_text=True)
    for label in (
        "实施主体性质",
        "权力来源",
        "服务对象",
        "特别程序",
        "是否收费",
        "通办范围",
        "审批结果样本",
        "监督投诉电话",
        "行政诉讼途径",
        "办理流程",
        "常见问题",
        "来源渠道",
        "空白表格",
    ):
        assert label in page, label
    pdf = client.post(
        f"/staff/entries/{entry.id}/attachments",
        data={"file": (io.BytesIO(pdf_bytes()), "申请表.pdf")},
        content_type="multipart/form-data",
    )
    assert pdf.status_code == 302
    file_id = session.exec(select(EntryAttachment.id).where(EntryAttachment.entry_id == entry.id)).one()
    form = {
        **FORM_BASE,
        **form_of(ELEMENT_VALUES),
        "result_sample": str(file_id),
        "m-0-name": "申请表",
        "m-0-form": "paper",
        "m-0-required": "1",
        "m-0-copies": "2",
        "m-0-source_channel": "applicant",
        "m-0-original": "original",
        "m-0-accept_standard": "签字",
        "m-0-basis": "《社会救助暂行办法》",
        "m-0-blank_form": str(file_id),
        "m-0-sample": "",
        "s-0-name": "受理",
        "s-0-post": "综合窗口",
        "s-0-days": "1",
        "s-0-unit": "working",
        "s-1-name": "",
        "q-0-question": "可以代办吗？",
        "q-0-answer": "可以。",
    }
    response = client.post(f"/staff/entries/{entry.id}/edit", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    data = call(client, "GET", f"/api/v1/entries/{entry.id}", draft["token"]).get_json()
    for key, value in ELEMENT_VALUES.items():
        assert data[key] == value, key
    assert data["result_sample"] == file_id
    material = data["materials"][0]
    assert (material["copies"], material["source_channel"], material["blank_form"], material["sample"]) == (
        2,
        "applicant",
        file_id,
        None,
    )
    assert [s["name"] for s in data["steps"]] == ["受理"]
    assert data["faqs"] == [{"question": "可以代办吗？", "answer": "可以。"}]
    page = client.get(f"/staff/entries/{entry.id}/edit").get_data(as_text=True)
    assert 'value="泰州市民政局"' in page
    assert 'value="受理"' in page

    # Choosing 未填报 again records "not recorded", not 否.
    form |= {"charges": "", "in_hall": "", "m-0-copies": ""}
    assert client.post(f"/staff/entries/{entry.id}/edit", data=form).status_code == 302
    data = call(client, "GET", f"/api/v1/entries/{entry.id}", draft["token"]).get_json()
    assert data["charges"] is None
    assert data["in_hall"] is None
    assert data["materials"][0]["copies"] is None


def test_the_form_shows_every_error_in_one_round(client, session, draft):
    entry = draft["entry"]
    sign_in(client, draft["user"].id)
    form = {
        **FORM_BASE,
        "anticipate_days": "二十",
        "complaint_phone": "call me",
        "mobile_url": "ftp://x",
        "m-0-name": "申请表",
        "m-0-form": "paper",
        "m-0-copies": "0",
        "s-0-name": "",
        "s-0-post": "综合窗口",
        "q-0-question": "问",
        "q-0-answer": "",
    }
    response = client.post(f"/staff/entries/{entry.id}/edit", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    # A parse error (not a number) and the service's errors come back together.
    for key, text in (
        ("anticipate_days", "请输入整数"),
        ("complaint_phone", "监督投诉电话"),
        ("mobile_url", "移动端办理地址"),
        ("m-0-copies", "份数"),
        ("s-0-name", "办理环节"),
        ("q-0-answer", "解答"),
    ):
        assert f'id="{key}-error"' in page, key
        assert text in page.split(f'id="{key}-error"', 1)[1][:200], key
    session.expire_all()
    assert session.get(type(entry), entry.id).version == entry.version  # nothing written


def test_an_upload_through_the_form_refuses_a_disguised_file(client, session, draft):
    sign_in(client, draft["user"].id)
    response = client.post(
        f"/staff/entries/{draft['entry'].id}/attachments",
        data={"file": (io.BytesIO(b"MZ\x90\x00 this is a program"), "申请表.pdf")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "上传失败" in response.get_data(as_text=True)
    assert session.exec(select(EntryAttachment)).first() is None


def test_the_rates_leave_not_recorded_visits_out_of_numerator_and_denominator():
    from datetime import UTC, datetime

    from reports import metrics as m

    def fact(id_: int, visits: int | None, depth: str = "") -> m.EntryFact:
        return m.EntryFact(
            id_,
            f"T{id_}",
            f"E{id_}",
            "01",
            "4",
            1,
            "321203000000",
            id_,
            "published",
            visits=visits,
            online_depth=frozenset(filter(None, depth.split(","))),
        )

    now = datetime(2026, 11, 30, tzinfo=UTC)
    facts = m.Facts(
        as_of=now,
        period_start=now,
        period_end=now,
        entries=[
            fact(1, 0, "4,5,6"),
            fact(2, 2),
            fact(3, None),
            fact(4, None, "4,5,6"),
            fact(5, 1, "1"),
        ],
    )
    once = m.at_most_once_rate(facts)
    assert (once.numerator, once.denominator) == (2, 3)
    assert 3 not in once.denominator_ids
    assert 4 not in once.denominator_ids
    full = m.full_online_rate(facts)
    # Entries 3 (nothing recorded) and 4 (Ⅳ-level codes, visits unknown) are neither yes nor no;
    # entry 5's recorded codes rule Ⅳ out whatever its visits.
    assert (full.numerator, full.denominator) == (1, 3)
    assert 4 not in full.denominator_ids
    online = m.online_available_rate(facts)
    assert (online.numerator, online.denominator) == (2, 4)
    assert 3 not in online.denominator_ids
    only_missing = m.Facts(as_of=now, period_start=now, period_end=now, entries=[fact(3, None)])
    assert m.at_most_once_rate(only_missing).value is None


def test_exports_carry_the_recorded_elements_and_nothing_for_missing_ones(client, session):
    from pyshacl import validate
    from rdflib import Graph
    from rdflib.namespace import DCTERMS

    from reports.cpsv import CV, build_graph

    dept = make_department(session, "区民政局")
    recorded = published_entry(session, dept)
    _publish_revision(session, recorded.id, fields=ELEMENT_VALUES,
                      materials=[{"name": "申请表", "copies": 1, "accept_standard": "签字完整"}])
    bare = entry_services.claim_item(session, SYSTEM, item_id=make_item(session).id, department_id=dept.id)
    partial = {k: v for k, v in COMPLETE_FIELDS.items() if k != "accept_conditions"}
    entry_services.update_entry(session, SYSTEM, bare.id, fields=partial)
    entry_services.submit_entry(session, SYSTEM, bare.id)
    entry_services.approve_entry(session, SYSTEM, bare.id)
    session.commit()

    graph = build_graph(session, "http://127.0.0.1:5000")
    shapes = Graph().parse(
        Path(__file__).resolve().parents[2] / "data" / "cpsv-ap-3.2.0" / "cpsv-ap-SHACL.ttl"
    )
    conforms, _g, text = validate(graph, shacl_graph=shapes, inference="none")
    assert conforms, text
    texts = {str(o) for o in graph.objects(None, DCTERMS.title)} | {
        str(o) for o in graph.objects(None, DCTERMS.description)
    }
    assert "低保证" in texts  # 审批结果 → cv:Output
    assert "签字完整" in texts  # 受理标准 → the evidence's description
    assert "12345" in {str(o) for o in graph.objects(None, CV.telephone)}  # 监督投诉电话
    service = next(s for s in graph.subjects(DCTERMS.identifier, None) if str(s).endswith(bare.task_code))
    assert not list(graph.objects(service, CV.holdsRequirement))  # no invented requirement

    services = {s["service_code"]: s for s in client.get("/open311/v2/services.json").get_json()}
    assert "服务对象：自然人、企业法人" in services[recorded.task_code]["description"]
    assert "业务办理项：新办" in services[recorded.task_code]["description"]
    assert "服务对象" not in services[bare.task_code]["description"]
