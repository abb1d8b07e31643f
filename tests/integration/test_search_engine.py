"""The search engine on SQLite and PostgreSQL: the LIKE oracle, ranking, pinyin, aliases, typos,
facets under filters, index sync with the entry workflow, and hostile input."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from catalog import entries as entry_services
from catalog import search as engine
from catalog.search import SearchFilters, aliases
from core.audit import AuditLog
from core.auth import SYSTEM, Principal, Role
from core.errors import Invalid
from tests.factories.search import NAMES, TOWN_NAMES, savepoint_session, shared_catalogue


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def catalogue(request: pytest.FixtureRequest) -> Any:
    """The factory catalogue, built once per database for this module (never committed)."""
    database = request.getfixturevalue("sqlite_database" if request.param == "sqlite" else "pg_database")
    with shared_catalogue(database) as shared:
        yield shared


@pytest.fixture
def handles(catalogue: Any) -> dict[str, Any]:
    return catalogue[1]


@pytest.fixture
def any_session(catalogue: Any) -> Any:
    """The same test on SQLite and PostgreSQL, over the shared catalogue, rolled back after each."""
    with savepoint_session(catalogue[0]) as s:
        yield s


def all_codes(session: Any, q: str, filters: SearchFilters | None = None) -> list[str]:
    """Every task code the engine returns for q, paging through."""
    out: list[str] = []
    page = 1
    while True:
        result = engine.search(session, q, filters, page=page, limit=100)
        out += [h.task_code for h in result.items]
        if len(out) >= result.total or not result.items:
            assert len(out) == result.total
            return out
        page += 1


def oracle_queries() -> list[str]:
    chars = sorted({c for n in NAMES for c in n if "\u4e00" <= c <= "\u9fff"})
    bigrams = sorted(
        {
            n[i : i + 2]
            for n in NAMES
            for i in range(len(n) - 1)
            if all("\u4e00" <= c <= "\u9fff" for c in n[i : i + 2])
        }
    )
    longer = sorted(
        {
            n[i : i + k]
            for n in NAMES
            for k in (3, 5)
            for i in range(0, len(n) - k, 3)
            if all("\u4e00" <= c <= "\u9fff" for c in n[i : i + k])
        }
    )
    return chars[::2] + bigrams[::3] + longer[::2]


def test_every_name_containing_the_query_is_found_like_oracle(any_session: Any) -> None:
    queries = oracle_queries()
    assert len(queries) > 150
    for q in queries:
        expected = engine.like_oracle(any_session, q)
        assert expected, q
        got = all_codes(any_session, q)
        assert expected <= set(got), f"missed for {q!r}: {expected - set(got)}"
        # Every name match is scored as one (never as a typo or other-field match).
        scores = {h.task_code: h.score for h in engine.search(any_session, q, limit=100).items}
        assert all(scores[c] >= engine.ALL_WORDS - engine.VARIANT_PENALTY for c in expected if c in scores), q


def test_two_character_and_one_character_queries_find_names(any_session: Any) -> None:
    assert engine.like_oracle(any_session, "护照") == set(all_codes(any_session, "护照"))
    codes = set(all_codes(any_session, "证"))
    assert engine.like_oracle(any_session, "证") <= codes


def test_ranking_exact_then_prefix_then_contains_then_other_fields(
    any_session: Any, handles: dict[str, Any]
) -> None:
    result = engine.search(any_session, "失业登记", limit=50)
    assert result.items[0].name == "失业登记"
    assert result.items[0].score == engine.EXACT
    names = [h.name for h in engine.search(any_session, "社会保障卡", limit=50).items]
    assert names[0].startswith("社会保障卡")
    scores = [h.score for h in engine.search(any_session, "保险", limit=50).items]
    assert scores == sorted(scores, reverse=True)
    # A keyword match ranks after every name match and says which field matched.
    kw = engine.search(any_session, "跑腿代办", limit=50)
    assert kw.total == len([i for i in range(len(NAMES)) if i % 7 == 0])
    assert {h.matched_field for h in kw.items} == {"keyword"}
    # A material match is found too (only through the material).
    mat = engine.search(any_session, "待遇领取资格认证表", limit=50)
    assert [h.name for h in mat.items] == [NAMES[5]]
    assert mat.items[0].matched_field == "material"
    # A department name finds that department's entries, below any name match.
    dept = engine.search(any_session, "公安分局", limit=100)
    assert dept.total == len(NAMES[1::3])
    assert handles["draft"].task_code not in all_codes(any_session, "社会保障卡")


def test_all_words_in_the_name_match_in_any_order(any_session: Any) -> None:
    result = engine.search(any_session, "登记 养老", limit=50)
    assert {h.name for h in result.items} == {"城乡居民基本养老保险参保登记", "城乡居民基本养老保险注销登记"}


def test_full_pinyin_and_initials_find_the_entry(any_session: Any) -> None:
    assert engine.search(any_session, "huzhao").items[0].name == "普通护照签发"
    assert engine.search(any_session, "canjiren").items[0].name.startswith("残疾人")
    assert engine.search(any_session, "zdshbz").items[0].name == "最低生活保障"
    hit = engine.search(any_session, "shehuibaozhangka").items[0]
    assert hit.name.startswith("社会保障卡")
    assert hit.highlights == [(0, 5)]


def test_aliases_map_everyday_words_to_official_names(any_session: Any) -> None:
    assert engine.search(any_session, "社保").items[0].name.startswith("社会保障卡")
    assert engine.search(any_session, "低保").items[0].name == "最低生活保障"
    assert engine.search(any_session, "驾照").items[0].name.startswith("拖拉机/联合收割机驾驶证")
    top = {h.name for h in engine.search(any_session, "开饭店要办什么证").items[:3]}
    assert top & {"食品小经营店备案发放", "食品(含保健食品)经营许可核发"}
    assert engine.search(any_session, "办身份证").items[0].name.startswith("居民身份证")


def test_alias_added_by_an_administrator_takes_effect(any_session: Any) -> None:
    assert engine.search(any_session, "蜂农").total == 0
    engine.save_alias(any_session, SYSTEM, "蜂农", "养蜂证")
    assert engine.search(any_session, "蜂农").items[0].name == "养蜂证换证"
    with pytest.raises(Invalid) as err:
        engine.save_alias(any_session, SYSTEM, "蜂农", "养蜂")
    assert "alias" in err.value.details


def _alias_audit(session: Any) -> list[tuple[str, str, Any, Any]]:
    rows = session.execute(
        sa.select(AuditLog).where(AuditLog.entity_type == "search_alias").order_by(AuditLog.id)
    ).scalars()
    return [(r.action, r.actor_name, r.old, r.new) for r in rows]


def test_every_alias_write_leaves_its_audit_row(any_session: Any) -> None:
    admin = Principal(user_id=None, name="别名管理员", role=Role.ADMIN)
    before = len(_alias_audit(any_session))
    row = aliases.save_alias(any_session, admin, "蜂农", "养蜂证", "来自未命中查询")
    aliases.save_alias(any_session, admin, "蜂农", "养蜂证|养蜂", "来自未命中查询", alias_id=row.id)
    # The same values again change nothing and write no audit row.
    aliases.save_alias(any_session, admin, "蜂农", "养蜂证|养蜂", "来自未命中查询", alias_id=row.id)
    from_file = [{"alias": "蜂农", "targets": "养蜂证", "note": ""}]
    assert aliases.load_aliases(any_session, SYSTEM, from_file) == 1
    aliases.delete_alias(any_session, admin, row.id)
    created = {"alias": "蜂农", "targets": "养蜂证", "note": "来自未命中查询"}
    changed = {"alias": "蜂农", "targets": "养蜂证|养蜂", "note": "来自未命中查询"}
    loaded = {"alias": "蜂农", "targets": "养蜂证", "note": ""}
    assert _alias_audit(any_session)[before:] == [
        (aliases.ALIAS_SAVED, "别名管理员", None, created),
        (aliases.ALIAS_SAVED, "别名管理员", created, changed),
        (aliases.ALIAS_SAVED, "system", changed, loaded),
        (aliases.ALIAS_DELETED, "别名管理员", loaded, None),
    ]


def test_one_wrong_missing_or_extra_character_is_tolerated(any_session: Any) -> None:
    # 休 does not sound like 保 (报 would: that is a homophone, corrected through pinyin instead).
    wrong = engine.search(any_session, "最低生活休障")
    assert wrong.fuzzy
    assert wrong.items[0].name == "最低生活保障"
    missing = engine.search(any_session, "城乡居民基本养老保待遇申领")
    assert missing.items[0].name == "城乡居民基本养老保险待遇申领"
    extra = engine.search(any_session, "普通护护照签发")
    assert extra.items[0].name == "普通护照签发"
    assert engine.search(any_session, "全然无关的词语").total == 0


def test_facets_and_totals_are_correct_under_filters(any_session: Any, handles: dict[str, Any]) -> None:
    q = "登记"
    everything = engine.search(any_session, q)
    expected = engine.like_oracle(any_session, q)
    town_level = engine.search(any_session, q, SearchFilters(level="5"))
    assert town_level.total == len([n for n in TOWN_NAMES if q in n])
    assert {f["value"]: f["count"] for f in town_level.facets["level"]} == {
        f["value"]: f["count"] for f in everything.facets["level"]
    }, "a facet's own filter does not shrink its counts"
    assert sum(f["count"] for f in everything.facets["level"]) == everything.total
    assert everything.total >= len(expected)
    town = engine.search(any_session, q, SearchFilters(division=handles["town_code"]))
    assert town.total == town_level.total
    assert {h.division_code for h in town.items} == {handles["town_code"]}
    dept = handles["depts"][0]
    by_dept = engine.search(any_session, q, SearchFilters(department=dept.id))
    assert by_dept.total == sum(
        1
        for c in all_codes(any_session, q)
        if entry_services.get_entry_by_task_code(any_session, c).department_id == dept.id
    )
    combined = engine.search(any_session, q, SearchFilters(level="4", task_type="20"))
    assert combined.total == everything.total - town_level.total
    assert engine.search(any_session, q, SearchFilters(task_type="01")).total == 0
    beyond = engine.search(any_session, q, page=50, limit=10)
    assert beyond.items == []
    assert beyond.total == everything.total


def test_index_follows_publish_reopen_and_retire(any_session: Any, handles: dict[str, Any]) -> None:
    entry = handles["entries"]["普通护照签发"]
    assert entry.task_code in all_codes(any_session, "护照")
    entry_services.retire_entry(any_session, SYSTEM, entry.id, "事项取消")
    assert entry.task_code not in all_codes(any_session, "护照")
    draft = handles["draft"]
    assert draft.task_code not in all_codes(any_session, "草稿事项")
    entry_services.update_entry(
        any_session,
        SYSTEM,
        draft.id,
        fields={
            "accept_conditions": "本区居民",
            "anticipate_days": 20,
            "promise_days": 5,
            "visits": 1,
            "visits_reason": "核验原件",
            "window_address": "政务服务中心",
            "opening_hours": "工作日",
            "phone": "0523-86900000",
        },
    )
    entry_services.submit_entry(any_session, SYSTEM, draft.id)
    entry_services.approve_entry(any_session, SYSTEM, draft.id)
    assert draft.task_code in all_codes(any_session, "草稿事项")
    # A full rebuild gives the same answer (items, totals, facet counts) as the incremental updates.
    queries = ["社会", "登记", "护照", "草稿事项", "证"]
    before = [(all_codes(any_session, q), engine.search(any_session, q).facets) for q in queries]
    engine.rebuild_index(any_session)
    assert [(all_codes(any_session, q), engine.search(any_session, q).facets) for q in queries] == before


def test_facet_cells_agree_with_counting_the_entries(any_session: Any, handles: dict[str, Any]) -> None:
    """The per-term cells and a count over the matching entries give the same totals and facets."""
    from catalog.search.facets import _cell_facets, _facets
    from catalog.search.sql import _t
    from catalog.search_models import SearchEntry

    e = _t(SearchEntry)
    filters = [
        SearchFilters(),
        SearchFilters(level="5"),
        SearchFilters(division=handles["town_code"]),
        SearchFilters(division="321203000000", task_type="20"),
        SearchFilters(department=handles["depts"][0].id),
        SearchFilters(no_contact=True),
    ]
    for q in ("登记", "社会保障卡", "证", "残疾"):
        ids = _term_ids(any_session, q)
        for f in filters:
            total, facets, _per_term = _cell_facets(any_session, ids, f)
            assert (total, facets) == _facets(any_session, e, [e.c.name_term_id.in_(ids)], f), (q, f)


def _term_ids(session: Any, q: str) -> list[int]:
    from catalog.search.query import _match_phrase, _Phrase

    return sorted(_match_phrase(session.connection(), _Phrase((q,), 0)))


def test_zero_result_queries_are_logged_for_administrators(any_session: Any) -> None:
    for _ in range(3):
        engine.search(any_session, "  潜水艇执照吗？ ", log_miss=True)
    engine.search(any_session, "护照", log_miss=True)
    misses = {m.query: m.count for m in engine.top_misses(any_session)}
    assert misses.get("潜水艇执照吗") == 3
    assert "护照" not in misses


HOSTILE = [
    "",
    "   ",
    "\x00\x01\x02",
    "社" * 1000,
    "' OR 1=1 --",
    "%",
    "_",
    "\\",
    "<script>alert(1)</script>",
    "社保%' UNION SELECT * FROM app_user --",
    "🙂🙂",
    "ｇｏｎｇｊｉｊｉｎ",
    "\u202e社保",
    "a" * 5000,
]


def test_hostile_or_odd_queries_give_safe_results(any_session: Any) -> None:
    for q in HOSTILE:
        result = engine.search(any_session, q, log_miss=True)
        assert len(result.items) <= result.total, q
        assert len(result.query) <= engine.MAX_QUERY_CHARS
        assert "%" not in result.query
        assert "<" not in result.query
    assert engine.search(any_session, "%").total == 0
    assert engine.search(any_session, "ｇｏｎｇｊｉｊｉｎ").query == "gongjijin"
