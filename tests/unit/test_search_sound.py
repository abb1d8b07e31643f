"""Sound-alike matching for homophone typos (catalog.search.text): loose pinyin and alignment."""

from __future__ import annotations

import pytest

from catalog.search.text import _loose_syllable, sound_align, sound_keys


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("zhi", "zi"),
        ("chang", "can"),
        ("shen", "sen"),
        ("nan", "lan"),
        ("ning", "lin"),
        ("feng", "fen"),
        ("wang", "wan"),
    ],
)
def test_commonly_blurred_syllables_share_a_key(a: str, b: str) -> None:
    assert _loose_syllable(a) == _loose_syllable(b)


@pytest.mark.parametrize(("a", "b"), [("gong", "gon"), ("zhi", "ji"), ("ke", "ge"), ("an", "en")])
def test_distinct_syllables_keep_distinct_keys(a: str, b: str) -> None:
    assert _loose_syllable(a) != _loose_syllable(b)


def test_characters_that_sound_alike_have_the_same_key() -> None:
    assert sound_keys("许克") == sound_keys("许可")
    assert sound_keys("宁") == sound_keys("林")
    assert sound_keys("潜") != sound_keys("排")


def test_alignment_places_a_stand_in_across_a_left_out_word() -> None:
    placed = sound_align("夜间施工许克", "夜间建筑施工许可", max_subs=2, max_gaps=2)
    assert placed is not None
    gaps, subs, positions = placed
    assert (gaps, subs) == (1, 1)
    assert "".join("夜间建筑施工许可"[k] for k in positions) == "夜间施工许可"


def test_alignment_refuses_what_does_not_sound_alike_or_needs_no_stand_in() -> None:
    assert sound_align("排水许可", "经营潜水许可", max_subs=1, max_gaps=1) is None
    assert sound_align("排水许可", "城镇污水排入排水管网许可", max_subs=1, max_gaps=1) is None
    assert sound_align("采伐正", "更新采伐护路林审批", max_subs=1, max_gaps=1) is None


def test_alignment_respects_its_limits() -> None:
    assert sound_align("采伐正", "林木采伐许可证核发", max_subs=1, max_gaps=0) is None
    assert sound_align("彩罚正", "林木采伐许可证核发", max_subs=1, max_gaps=1) is None
