"""一件事 bundles people can find and trust (issue 14 item 8): the opening-bundle check (admin page and
`flask reports check-bundles`), the time with its unit and how it is added up, materials merged only
when they are the same material, links from the home page and from the entries a bundle holds.

On the rolled-back PostgreSQL; catalogue data through the catalogue services.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session

from core import users
from core.auth import SYSTEM, Role
from reports import bundles
from tests.conftest import sign_in
from tests.factories.catalog import make_department, make_item
from tests.factories.search import publish

OPENING = ["个体工商户设立登记", "食品(含保健食品)经营许可核发"]
LATER = ["食品(含保健食品)经营许可延续", "食品(含保健食品)经营许可变更住所", "个体工商户注销登记"]


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    dept = make_department(session, "区市场监管局")
    entries = {}
    for n, name in enumerate(OPENING + LATER):
        item = make_item(session, name=name, task_type="01", use_levels="4")
        entries[name] = publish(
            session,
            dept,
            item,
            promise_days=[5, 10, 3, 0, 7][n],
            promise_unit="calendar" if n == 4 else "working",
            project_type="1" if n == 3 else "2",  # 0 days is 即办件
            materials=[
                {"name": "申请书", "form": "paper", "required": True, "copies": 1},
                {"name": "居民身份证", "form": "paper" if n else "electronic", "required": True, "copies": 1},
            ],
        )
    session.flush()
    return entries


def codes(world: dict[str, Any], names: list[str]) -> list[str]:
    return [world[n].task_code for n in names]


def test_an_opening_bundle_holding_renewal_change_or_cancellation_is_warned(
    session: Session, world: dict[str, Any]
) -> None:
    bad = bundles.save_bundle(
        session, SYSTEM, name="我要开餐馆", task_codes=codes(world, OPENING + LATER[:2])
    )
    warnings = bundles.check_bundle(session, bad.id)
    assert len([w for w in warnings if w.startswith("开办类")]) == 2
    assert any("延续" in w and LATER[0] in w for w in warnings)
    assert any("变更" in w and LATER[1] in w for w in warnings)
    good = bundles.save_bundle(session, SYSTEM, name="个体户开业一件事", task_codes=codes(world, OPENING))
    assert bundles.check_bundle(session, good.id) == []
    # A bundle for closing down is meant to hold 注销 items: no warning.
    exit_bundle = bundles.save_bundle(
        session, SYSTEM, name="市场主体退出一件事", task_codes=codes(world, LATER[2:])
    )
    assert bundles.check_bundle(session, exit_bundle.id) == []
    assert set(bundles.check_bundles(session)) == {bad.id}


def test_time_is_shown_per_unit_summed_with_the_longest_step_beside_it(
    session: Session, world: dict[str, Any]
) -> None:
    bundle = bundles.save_bundle(
        session, SYSTEM, name="混合时限", task_codes=codes(world, [*OPENING, LATER[1], LATER[2]])
    )
    times = {t.unit: t for t in bundles.bundle_view(session, bundle.id, public=False).times}
    assert set(times) == {"working", "calendar"}  # never added together
    assert (times["working"].label, times["working"].total, times["working"].longest) == ("工作日", 15, 10)
    assert (times["calendar"].label, times["calendar"].total) == ("自然日", 7)


def test_materials_merge_only_when_name_form_and_source_are_the_same(
    session: Session, world: dict[str, Any]
) -> None:
    bundle = bundles.save_bundle(session, SYSTEM, name="材料合并", task_codes=codes(world, OPENING))
    materials = bundles.bundle_view(session, bundle.id, public=False).materials
    forms = sorted((m["name"], m["form"], len(m["entries"])) for m in materials)
    # 申请书 on paper twice: one material; 居民身份证 electronic for one, paper for the other: two.
    assert forms == [("居民身份证", "electronic", 1), ("居民身份证", "paper", 1), ("申请书", "paper", 2)]


def test_the_public_page_names_the_unit_and_how_time_is_added_up(
    client: Any, session: Session, world: dict[str, Any]
) -> None:
    bundle = bundles.save_bundle(
        session,
        SYSTEM,
        name="个体户开业一件事",
        task_codes=codes(world, [*OPENING, LATER[1]]),  # 5 + 10 + 0 (即办) working days
        published=True,
    )
    session.commit()
    page = client.get(f"/bundles/{bundle.id}").get_data(as_text=True)
    assert "15 个工作日" in page
    assert "逐项相加" in page
    assert "最长的单项：10 个工作日" in page
    assert "即办" in page  # the 0-day step is 即办, never "0个工作日"
    assert "0个工作日" not in page
    assert "0 个工作日" not in page.replace("10 个工作日", "")


def test_bundles_are_linked_from_the_home_page_and_from_their_entries(
    client: Any, session: Session, world: dict[str, Any]
) -> None:
    bundle = bundles.save_bundle(
        session, SYSTEM, name="个体户开业一件事", task_codes=codes(world, OPENING), published=True
    )
    draft = bundles.save_bundle(session, SYSTEM, name="草稿一件事", task_codes=codes(world, OPENING))
    session.commit()
    home = client.get("/").get_data(as_text=True)
    assert f'href="/bundles/{bundle.id}"' in home
    assert f'href="/bundles/{draft.id}"' not in home
    entry_page = client.get(f"/entries/{world[OPENING[0]].task_code}").get_data(as_text=True)
    assert f'href="/bundles/{bundle.id}"' in entry_page
    assert "个体户开业一件事" in entry_page
    other = client.get(f"/entries/{world[LATER[0]].task_code}").get_data(as_text=True)
    assert 'id="in-bundles"' not in other


def test_the_bundle_admin_shows_the_check(client: Any, session: Session, world: dict[str, Any]) -> None:
    bundle = bundles.save_bundle(
        session, SYSTEM, name="我要开餐馆", task_codes=codes(world, OPENING + LATER[:1])
    )
    admin = users.create_user(
        session,
        SYSTEM,
        users.NewUser(
            username="bundle_admin", password="a-long-password-1", display_name="管理员", role=Role.ADMIN
        ),
    )[0]
    session.commit()
    sign_in(client, admin.id)
    listing = client.get("/admin/bundles/").get_data(as_text=True)
    assert "1 个问题" in listing
    page = client.get(f"/admin/bundles/{bundle.id}").get_data(as_text=True)
    assert "开办类“一件事”含延续事项" in page


def test_the_cli_check_fails_on_an_opening_bundle_with_a_renewal(
    app: Any, session: Session, world: dict[str, Any]
) -> None:
    bundles.save_bundle(session, SYSTEM, name="我要开餐馆", task_codes=codes(world, OPENING + LATER[:1]))
    session.commit()
    result = app.test_cli_runner().invoke(args=["reports", "check-bundles"])
    assert result.exit_code == 1
    assert "我要开餐馆" in result.output
    assert "延续" in result.output


def test_a_name_saved_by_someone_else_meanwhile_is_a_field_error_not_a_500(
    db: Any, session: Session, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two administrators save bundles of one name at once: the second meets the unique index after
    its own check passed. It answers as the check does."""
    from core.errors import Invalid
    from core.types import utcnow

    def someone_else_saves_first() -> Any:
        monkeypatch.setattr(bundles, "utcnow", utcnow)  # once: their save calls it too
        with db.transaction() as other:
            bundles.save_bundle(other, SYSTEM, name="开办餐馆一件事", task_codes=codes(world, OPENING))
        return utcnow()

    session.commit()
    monkeypatch.setattr(bundles, "utcnow", someone_else_saves_first)
    with pytest.raises(Invalid) as caught:
        bundles.save_bundle(session, SYSTEM, name="开办餐馆一件事", task_codes=codes(world, OPENING))
    assert caught.value.details == {"name": ["已有同名的套餐式服务"]}
