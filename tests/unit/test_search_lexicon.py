"""The thesaurus behind query expansion (catalog.search.lexicon): 词林 synonym groups only, bounded."""

from __future__ import annotations

from catalog.search.lexicon import MAX_GROUP, lexicon_size, synonyms


def test_synonyms_come_from_the_shipped_thesaurus() -> None:
    assert "犬" in synonyms("狗")
    assert "户籍" in synonyms("户口")
    assert "薪资" in synonyms("工资")
    assert lexicon_size() > 10_000


def test_a_word_never_lists_itself_and_groups_are_bounded() -> None:
    for word in ("狗", "户口", "工资", "迁移"):
        found = synonyms(word)
        assert word not in found
        assert 0 < len(found) < MAX_GROUP


def test_broad_senses_and_related_words_are_left_out() -> None:
    # 材料 shares a 27-word sense with 人才 / 天才; 医生 and 护士 are a "#" (same kind) group.
    assert "人才" not in synonyms("材料")
    assert "护士" not in synonyms("医生")


def test_single_characters_swap_only_for_single_characters() -> None:
    assert all(len(w) == 1 for w in synonyms("狗"))
    assert "搬" not in synonyms("迁移")
    assert all(len(w) > 1 for w in synonyms("离婚"))


def test_an_unknown_word_has_no_synonyms() -> None:
    assert synonyms("营运证") == ()
    assert synonyms("") == ()
