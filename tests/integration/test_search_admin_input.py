"""Hostile input to the administrators' search pages and settings: the list of services handled
elsewhere, the aliases and the four-eyes setting. Each is refused in Chinese and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from catalog import review_settings
from catalog.search.aliases import alias_values, save_alias
from catalog.search.elsewhere import find_elsewhere, save_elsewhere
from catalog.search_models import ElsewhereService, SearchAlias
from core.auth import SYSTEM, Role
from core.errors import Invalid
from tests.factories.catalog import make_user

SERVICE = {"name": "港澳通行证办理", "body": "泰州市公安局出入境管理支队"}


def _refused(session: Any, **form: str) -> dict[str, list[str]]:
    with pytest.raises(Invalid) as refused:
        save_elsewhere(session, SYSTEM, {**SERVICE, **form})
    return refused.value.details


@pytest.mark.parametrize(
    "url",
    [
        "https://www.jiangsu.gov.cn@evil.example/login",
        "https://user:secret@example.org/",
        "https://@",
        "https://example.org:99999/",
        "https://:80/",
    ],
)
def test_an_elsewhere_link_with_credentials_or_no_host_is_refused(any_session: Any, url: str) -> None:
    assert "url" in _refused(any_session, url=url)
    assert (
        any_session.execute(
            sa.select(ElsewhereService).where(ElsewhereService.name == SERVICE["name"])
        ).first()
        is None
    )


def test_an_elsewhere_word_of_one_character_is_refused_so_it_cannot_catch_every_search(
    any_session: Any,
) -> None:
    assert "每个检索词至少 2 个字（证 太短" in _refused(any_session, words="港澳通行证|证")["words"][0]
    assert "服务名称至少 2 个字" in _refused(any_session, name="证！")["name"][0]
    save_elsewhere(any_session, SYSTEM, {**SERVICE, "words": "港澳通行证|通行证续签"})
    assert find_elsewhere(any_session, "营业执照办证") == []


def test_an_elsewhere_phone_without_digits_and_a_control_character_are_refused(any_session: Any) -> None:
    assert "至少 3 位数字" in _refused(any_session, phone="转")["phone"][0]
    assert "至少 3 位数字" in _refused(any_session, phone="-")["phone"][0]
    assert _refused(any_session, note="备注\x00")["note"] == [
        "不能包含控制字符（如 NUL）或无效的 Unicode 字符"
    ]
    assert save_elsewhere(any_session, SYSTEM, {**SERVICE, "phone": "12367"}).phone == "12367"


def test_an_alias_of_one_character_or_too_many_targets_is_refused() -> None:
    with pytest.raises(Invalid) as one:
        alias_values("证", "营业执照")
    assert one.value.details["alias"][0].startswith("别名至少 2 个字")
    with pytest.raises(Invalid) as many:
        alias_values("办证", "|".join(f"目标{i}" for i in range(21)))
    assert many.value.details["targets"] == ["目标词最多 20 个（现有 21 个）"]
    # Its own target is allowed (the shipped 退休 -> 退休: typed as "tuixiu" it still finds 退休), and one
    # level of aliasing means a cycle cannot loop.
    assert alias_values("办证", "办证")["targets"] == "办证"
    assert alias_values("办证", "办证|营业执照")["targets"] == "办证|营业执照"  # a cycle is harmless


def test_a_garbled_id_on_the_admin_forms_edits_and_creates_nothing(client: Any, session: Any) -> None:
    _user, _principal, token = make_user(session, Role.ADMIN)
    session.commit()
    admin = {"Authorization": f"Bearer {token}"}
    r = client.post("/admin/search/elsewhere", headers=admin, data={**SERVICE, "id": "abc"})
    assert r.status_code == 404
    r = client.post(
        "/admin/search/aliases", headers=admin, data={"alias": "蜂农证", "targets": "养蜂", "id": "-1"}
    )
    assert r.status_code == 404
    session.expire_all()
    assert (
        session.execute(sa.select(ElsewhereService).where(ElsewhereService.name == SERVICE["name"])).first()
        is None
    )
    assert session.execute(sa.select(SearchAlias).where(SearchAlias.alias == "蜂农证")).first() is None
    save_alias(session, SYSTEM, "蜂农证", "养蜂")  # the same values with no id are taken
    session.rollback()


@pytest.mark.parametrize("form", [{}, {"four_eyes": "true"}, {"four_eyes": "on"}, {"four_eyes": ""}])
def test_a_settings_form_without_a_clear_choice_leaves_four_eyes_on(
    client: Any, session: Any, form: dict[str, str]
) -> None:
    _user, _principal, token = make_user(session, Role.ADMIN)
    session.commit()
    r = client.post("/admin/review-settings", headers={"Authorization": f"Bearer {token}"}, data=form)
    assert r.status_code == 302
    session.expire_all()
    assert review_settings.four_eyes_enabled(session) is True
    page = client.get("/admin/review-settings", headers={"Authorization": f"Bearer {token}"})
    assert "设置未改变" in page.get_data(as_text=True)


def test_a_name_saved_by_another_administrator_meanwhile_is_the_same_refusal(
    any_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unique index, not the check before it, decides between two administrators saving one name
    at once: the loser gets the check's answer, not a 500."""
    from catalog.search import elsewhere
    from core.types import utcnow

    def the_other_saves_first() -> Any:
        monkeypatch.setattr(elsewhere, "utcnow", utcnow)
        table = sa.inspect(ElsewhereService).local_table
        with any_session.no_autoflush:  # the other administrator's row goes in first
            any_session.execute(sa.insert(table).values(
                name=SERVICE["name"], words="", body=SERVICE["body"], note="", verified=False,
                updated_at=utcnow(),
            ))
        return utcnow()

    monkeypatch.setattr(elsewhere, "utcnow", the_other_saves_first)
    with pytest.raises(Invalid) as refused:
        save_elsewhere(any_session, SYSTEM, dict(SERVICE))
    assert refused.value.details == {"name": ["已有同名服务，请直接修改它"]}
