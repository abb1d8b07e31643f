"""The public entry page says which materials an e-licence replaces, and links to that licence type."""

from catalog import entries as entry_services
from core.auth import SYSTEM
from tests.factories.catalog import COMPLETE_FIELDS, make_department, make_item, seed_divisions

LICENCE_TYPE = "11100000MB0143028R001"  # 营业执照 (data/elicence_type_codes_observed.csv)


def test_entry_page_marks_the_material_an_e_licence_replaces(client, session):
    seed_divisions(session)
    dept = make_department(session, "区市场监管局")
    entry = entry_services.claim_item(session, SYSTEM, item_id=make_item(session).id, department_id=dept.id)
    entry_services.update_entry(
        session, SYSTEM, entry.id, fields=COMPLETE_FIELDS,
        materials=[
            {"name": "营业执照", "form": "paper", "licence_type_code": LICENCE_TYPE},
            {"name": "申请书", "form": "electronic"},
        ],
    )
    entry_services.submit_entry(session, SYSTEM, entry.id)
    entry_services.approve_entry(session, SYSTEM, entry.id)
    session.commit()

    html = client.get(f"/entries/{entry.task_code}").get_data(as_text=True)

    assert f'href="/licences/types/{LICENCE_TYPE}"' in html
    assert html.count("可用电子证照替代") == 1
