"""Text rules of the search engine: normalisation, grams, pinyin matching, typo tolerance, filters."""

from __future__ import annotations

import pytest

from catalog import search as engine
from catalog.search import SearchFilters, validate_filters
from catalog.search.text import licence_head_fixed, subject_words, two_character_fixes
from core.errors import Invalid


def test_queries_are_normalised_bounded_and_stripped_of_control_characters() -> None:
    assert engine.normalize_query("  社保\x00\x07  卡 ") == "社保 卡"
    assert engine.normalize_query("ＧＯＮＧＪＩＪＩＮ") == "gongjijin"
    assert engine.normalize_query("<script>alert(1)</script>") == "script alert 1 script"
    assert engine.normalize_query("' OR 1=1 --") == "or 1 1"
    assert len(engine.normalize_query("社" * 1000)) == engine.MAX_QUERY_CHARS
    assert engine.normalize_query(None) == ""
    assert engine.normalize_query("\u202e\u200b") == ""


def test_a_phrase_needs_its_bigrams_or_its_single_character() -> None:
    assert engine.query_grams("护") == {"护"}
    assert engine.query_grams("护照") == {"护照"}
    assert engine.query_grams("普通护照") == {"普通", "通护", "护照"}
    text = "普通护照签发"
    assert engine.query_grams("护照签") <= engine.grams(text)
    assert set(text) <= engine.grams(text)


def test_pinyin_is_read_in_context_and_aligned_on_syllables() -> None:
    py, ini = engine.pinyin_of("住房公积金提取")
    assert py == "zhu fang gong ji jin ti qu"
    assert ini == "zfgjjtq"
    assert engine.pinyin_match("gongjijin", py, ini) == engine.CONTAINS
    assert engine.pinyin_match("zhufang", py, ini) == engine.PREFIX
    assert engine.pinyin_match("zfgjjtq", py, ini) == engine.EXACT
    assert engine.pinyin_match("gjj", py, ini) == engine.CONTAINS
    # Letters that only line up across syllable boundaries do not match ("ngg" in "fanggong").
    assert engine.pinyin_match("ngg", py, ini) == 0
    spans = engine.syllables("ICP备案（变更）")
    assert [s for s, _, _ in spans] == ["icp", "bei", "an", "bian", "geng"]
    assert spans[0][1:] == (0, 3)


@pytest.mark.parametrize(
    ("phrase", "text", "ok"),
    [
        ("最低生活报障", "最低生活保障", True),  # one wrong character
        ("最低生活障", "最低生活保障", True),  # one missing
        ("最低生活保保障", "最低生活保障", True),  # one extra
        ("最低生活保障", "家庭经济困难儿童提供最低生活保障", True),
        ("最底生活报障", "最低生活保障", False),  # two wrong
        ("护照", "普通护照签发", True),
    ],
)
def test_one_edit_inside_a_longer_name_is_tolerated(phrase: str, text: str, ok: bool) -> None:
    assert engine.within_one_edit(phrase, text) is ok


def test_fillers_are_stripped_from_everyday_questions() -> None:
    assert engine.strip_fillers("结婚登记在哪里办") == "结婚登记"
    assert engine.strip_fillers("养老金怎么领") == "养老金 领"
    assert engine.strip_fillers("护照") == "护照"


def test_division_prefix_covers_every_level_of_code() -> None:
    assert engine.division_prefix("321203000000") == "321203"
    assert engine.division_prefix("321203") == "321203"
    assert engine.division_prefix("321203001000") == "321203001"
    assert engine.division_prefix("321203001001") == "321203001001"
    assert engine.division_prefix("321200000000") == "3212"
    assert engine.facet_division("321203001001", "6") == "321203001000"
    assert engine.facet_division("321203000000", "4") == "321203000000"


def test_facet_values_are_validated_with_field_errors() -> None:
    assert validate_filters("5", "321203001000", "3", "20", "true") == SearchFilters(
        level="5", division="321203001000", department=3, task_type="20", no_contact=True
    )
    assert validate_filters(None, "", "", None, None) == SearchFilters()
    with pytest.raises(Invalid) as err:
        validate_filters("7", "32120", "x", "99", "perhaps")
    assert set(err.value.details) == {"level", "division", "department", "type", "no_contact"}


def test_highlight_segments_cover_the_whole_name_in_order() -> None:
    hit = engine.Hit(1, "t", "普通护照签发", 1, "d", "4", "321203000000", "01", False, 60, "name", [(2, 4)])
    assert hit.name_segments() == [("普通", False), ("护照", True), ("签发", False)]
    assert "".join(t for t, _ in hit.name_segments()) == hit.name


def test_shipped_alias_table_is_well_formed() -> None:
    rows = engine.read_aliases_csv()
    assert len(rows) >= 50
    words = [r["alias"] for r in rows]
    assert len(words) == len(set(words))
    assert {"社保", "医保", "身份证", "驾照", "公积金"} <= set(words)


def test_an_abbreviation_is_its_characters_in_order_with_a_few_left_out() -> None:
    from catalog.search.text import abbreviation_span

    assert abbreviation_span("医保", "基本医疗保险关系转移接续") == (2, 5)
    assert abbreviation_span("低保", "最低生活保障") == (1, 5)
    assert abbreviation_span("社保卡", "社会保障卡挂失") == (0, 5)
    assert abbreviation_span("教师证", "教师资格证书补发") == (0, 5)
    # As typed is a plain match, not an abbreviation; out of order or too far apart is neither.
    assert abbreviation_span("医保", "医保电子凭证申领") is None
    assert abbreviation_span("保医", "医疗保险") is None
    assert abbreviation_span("医险", "医疗机构执业登记与保险") is None
    # Only 2 to 4 CJK characters.
    assert abbreviation_span("医", "医疗") is None
    assert abbreviation_span("ab", "a b") is None


def test_a_query_naming_no_follow_up_act_is_about_a_first_one() -> None:
    from catalog.search.text import asks_follow_up, follow_up_act

    assert follow_up_act("个体工商户注销登记")
    assert follow_up_act("社会保障卡补领、换领、换发")
    assert not follow_up_act("个体工商户设立登记")
    assert not asks_follow_up("想开个小店")
    assert asks_follow_up("社保卡丢了")
    assert asks_follow_up("营业执照变更")


def test_a_licence_query_s_subject_leaves_out_the_act_and_the_head() -> None:
    assert subject_words("食品经营许可证") == ("食品", "经营")
    assert subject_words("教师资格证认定") == ("教师", "资格")
    assert subject_words("狗证怎么办") == ("狗",)
    # An everyday verb is the act asked for, not a subject word, unless one character would be left.
    assert subject_words("开个幼儿园") == ("幼儿园",)
    assert subject_words("退修") == ("退", "修")


def test_a_character_read_zheng_is_read_as_zheng_only_where_a_licence_head_stands() -> None:
    assert licence_head_fixed("狗正怎么办") == "狗证怎么办"
    assert licence_head_fixed("出生医学正明") == "出生医学证明"
    assert licence_head_fixed("居民身份正办理") == "居民身份证办理"
    # Not at the start of a word, nor inside one (正常), nor where nothing follows that a head would.
    assert licence_head_fixed("正常") == "正常"
    assert licence_head_fixed("政府采购") == "政府采购"
    # Inside a question: a word of its own as typed that ends a dictionary word read as 证 (结婚证,
    # 教师资格证); 正在, 正常 are words as typed and stay.
    assert licence_head_fixed("结婚正丢了怎么补办") == "结婚证丢了怎么补办"
    assert licence_head_fixed("把教师资格正弄丢了怎么办") == "把教师资格证弄丢了怎么办"
    assert licence_head_fixed("我正在办理") == "我正在办理"
    assert licence_head_fixed("正常营业") == "正常营业"


def test_a_two_character_typo_is_corrected_only_to_a_dictionary_word() -> None:
    assert two_character_fixes("低宝怎么办")[0] == "低保怎么办"
    assert two_character_fixes("学藉")[0] == "学籍"
    # A word the dictionary has is left alone, however it sounds.
    assert two_character_fixes("火星") == []
    assert two_character_fixes("户口") == []
    # Inside a longer run: two one-character words side by side are a word the slip broke.
    assert two_character_fixes("法率援助中心怎么申请免费律师")[0] == "法律援助中心怎么申请免费律师"
    assert two_character_fixes("火星移民申请") == []


def test_everyday_verbs_of_a_query_name_the_catalogue_s_acts() -> None:
    from catalog.search.text import asked_acts

    assert "设立" in asked_acts("开公司")
    assert "申领" in asked_acts("交满多久可以领失业金")
    assert "缴费" in asked_acts("个人灵活就业社保怎么交")
    # A verb character inside a dictionary word is no verb of the query (开发, 交通).
    assert asked_acts("开发区") == ()
    assert asked_acts("交通运输") == ()
    assert asked_acts("gongsi") == ()


def test_a_character_before_a_licence_head_is_kept_with_it_when_asked() -> None:
    from catalog.search.text import meaningful_words

    assert meaningful_words("养小型犬需要办犬证么", licences=True) == ("小型", "犬证")
    assert meaningful_words("养小型犬需要办犬证么") == ("小型",)
    # Words the segmenter made are left as they are, and a head alone is no word.
    assert meaningful_words("领结婚证需要什么", licences=True) == ("结婚证",)
    assert meaningful_words("证", licences=True) == ()


def test_a_run_that_sounds_like_an_alias_is_written_as_the_alias() -> None:
    from catalog.search.aliases import Alias
    from catalog.search.query import heard_alias_fixes

    aliases = [Alias(w, ("x",), "", "") for w in ("医保", "养老金", "营业执照", "户口")]
    assert heard_alias_fixes("医报异地备案", aliases) == ["医保异地备案"]
    assert heard_alias_fixes("养牢金怎么领", aliases) == ["养老金怎么领"]
    assert heard_alias_fixes("想开个小店营也执照去哪儿办", aliases) == ["想开个小店营业执照去哪儿办"]
    # Typed as the alias, or sounding like none: nothing to correct.
    assert heard_alias_fixes("医保异地备案", aliases) == []
    assert heard_alias_fixes("火星移民", aliases) == []
    # Both characters different is another word, not one slip.
    assert heard_alias_fixes("胡扣", aliases) == []


def test_lost_broken_changed_or_run_out_asks_for_the_replacement_or_renewal_act() -> None:
    from catalog.search.text import asked_acts

    assert "补领" in asked_acts("结婚证丢了怎么补办")
    assert "换领" in asked_acts("社保卡换新卡怎么办理")
    assert "换发" in asked_acts("社保卡坏了")
    assert "延续" in asked_acts("身份证过期了怎么办")
    # 换 inside a word (转换, 交换) is no such verb.
    assert asked_acts("转换") == ()

