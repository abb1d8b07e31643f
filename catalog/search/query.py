"""Matching and ranking a query, and paging its hits (see docs/search.md)."""

from __future__ import annotations

import contextvars
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from catalog.search.aliases import Alias, active_aliases
from catalog.search.facets import _cell_facets, _cells_serve, _empty_facets, _facets
from catalog.search.filters import SearchFilters, _sql_filters
from catalog.search.grouping import Ranked, ServiceGroup, browsed_services, matched_services, page_places
from catalog.search.lexicon import synonyms
from catalog.search.misses import log_zero_result
from catalog.search.sql import _q, _t
from catalog.search.text import (
    _LATIN,
    FILLER_WORDS,
    FOLLOW_UP_ACTS,
    GENERIC_WORDS,
    abbreviation_span,
    asked_acts,
    asks_follow_up,
    follow_up_act,
    has_cjk,
    licence_head_fixed,
    meaningful_words,
    normalize_query,
    normalize_text,
    query_grams,
    segment,
    sound_align,
    sound_keys,
    strip_fillers,
    subject_words,
    syllables,
    two_character_fixes,
    within_one_edit,
)
from catalog.search_models import (
    FIELD_DEPARTMENT,
    FIELD_KEYWORD,
    FIELD_MATERIAL,
    FIELD_NAME,
    SearchEntry,
    SearchPosting,
    SearchTerm,
)

MAX_WORDS = 5
# Dictionary words a query may be cut into; longer cuts are too loose to be worth matching apart.
MAX_SEGMENTS = 8
MAX_PAGE = 1000
MAX_LIMIT = 100

# Scores. Name tiers leave room for the -3 given to a variant (alias, pinyin, filler-stripped).
EXACT, PREFIX, CONTAINS, ALL_WORDS = 100, 80, 60, 50
FUZZY = 32
# A word found as an abbreviation of what the name says (医保 in 医疗保险): below a word found as it is,
# above a homophone correction.
ABBREVIATION = 44
# A homophone typo corrected through pinyin (采伐正 -> 采伐证): below all-words (a query as typed),
# above a one-edit match and closest matches; one point less per jump over left-out characters.
HOMOPHONE = 40
# The query's subject words without its act and licence words (食品经营许可证 -> 食品 经营 in
# 食品(含保健食品)经营许可核发): below an abbreviation of what was typed, above a homophone correction.
SUBJECT = 43
# A character read like 证 standing where 证 would (狗正, 食品经营许可正) read as 证: a homophone
# correction of the one character citizens' queries most often end in, so at the homophone tier.
HEAD_FIXED = HOMOPHONE
# Closest matches when nothing matched in full: below every full match, plus the characters covered
# (a name covering more of what the query is about ranks higher).
PARTIAL = 10
FIELD_SCORES = {FIELD_KEYWORD: 25, FIELD_DEPARTMENT: 20, FIELD_MATERIAL: 12}
VARIANT_PENALTY = 3
# A word swapped for its thesaurus synonym (狗 -> 犬, 户口 -> 户籍) is further from what was typed than
# an alias an administrator wrote for this catalogue: it ranks below the query as typed and below
# alias targets, and above homophone and partial matches.
SYNONYM_PENALTY = 6
# Each synonym phrase costs index lookups; a query with many swappable words keeps the first ones.
MAX_SYNONYM_PHRASES = 12
# Synonyms tried per word when looking for closest matches (each is one indexed lookup).
MAX_PARTIAL_SYNONYMS = 4
# Two of a query's meaningful words found together in one name are evidence of what it is about even
# when the question says more besides ("工资被拖欠申请劳动仲裁": 劳动 and 仲裁 in 劳动人事争议仲裁申请).
MIN_COOCCURRING = 2
# A dictionary word this long found in a name (法律援助, 特种设备) says what the question is about
# however much else it says.
LONG_WORD = 4
# The last resort (``_match_characters``): the share of the query's characters one name must hold.
CHARACTER_SHARE = 0.75

_TASK_CODE = re.compile(r"^[0-9a-z]{31}$")


def pinyin_match(word: str, pinyin: str, initials: str) -> int:
    """Score of a latin ``word`` against a term's pinyin: syllable-aligned full pinyin, or initials."""
    syl = pinyin.split(" ") if pinyin else []
    best = 0
    for i in range(len(syl)):
        if "".join(syl[i:]).startswith(word):
            best = max(best, (EXACT if "".join(syl) == word else PREFIX) if i == 0 else CONTAINS)
            break
    if len(word) >= 2 and word in initials:
        best = max(best, EXACT if initials == word else PREFIX if initials.startswith(word) else CONTAINS)
    return best


@dataclass
class Hit:
    entry_id: int
    task_code: str
    name: str
    department_id: int
    department: str
    level: str
    division_code: str
    task_type: str
    no_contact: bool
    score: int
    matched_field: str
    highlights: list[tuple[int, int]] = field(default_factory=list)

    def name_segments(self) -> list[tuple[str, bool]]:
        """The name cut into (text, highlighted) pieces for templates (which escape the text)."""
        out: list[tuple[str, bool]] = []
        pos = 0
        for start, end in self.highlights:
            if start > pos:
                out.append((self.name[pos:start], False))
            out.append((self.name[start:end], True))
            pos = end
        if pos < len(self.name):
            out.append((self.name[pos:], False))
        return out


@dataclass
class SearchResult:
    query: str
    items: list[Hit]
    total: int
    page: int
    limit: int
    facets: dict[str, list[dict[str, Any]]]
    variants: list[str]
    fuzzy: bool = False
    # Nothing matched the whole query; the items are names holding most of its meaningful words.
    partial: bool = False
    # The query as corrected through its pinyin, when the best answer came from that correction.
    suggestion: str | None = None
    # One result per service (catalog.search.grouping): then ``total`` and the facets count services,
    # ``items`` holds each service's first place and ``services`` where each can be done.
    grouped: bool = False
    services: list[ServiceGroup] = field(default_factory=list)


@dataclass
class _Phrase:
    words: tuple[str, ...]
    penalty: int  # subtracted from name scores (variants rank below the query as typed)
    # Highest score the phrase may give: an alias found inside a longer query whose other words say
    # more ("潜水艇驾驶执照", "集体户口迁移") answers only part of it, so it ranks as a closest match.
    cap: int | None = None
    # Whether a one-typo match of the phrase may be tried: not for a thesaurus swap, which is already
    # a guess (宅基地 -> 住地 would then find 用地).
    typo_ok: bool = True
    # Words the query named besides (the act a subject phrase left out, 许可 of 许可证): a name holding
    # none of them ranks a point lower.
    prefer: tuple[str, ...] = ()


FIELD_LABELS = {
    FIELD_NAME: "name",
    FIELD_KEYWORD: "keyword",
    FIELD_DEPARTMENT: "department",
    FIELD_MATERIAL: "material",
}


def _phrases(query: str, aliases: list[Alias]) -> list[_Phrase]:
    words = tuple(query.split()[:MAX_WORDS])
    out = [_Phrase(words, 0)]
    if len(words) > 1:
        out.append(_Phrase(("".join(words),), 1))
    stripped = strip_fillers(query)
    if stripped and stripped != query:
        out.append(_Phrase(tuple(stripped.split()[:MAX_WORDS]), VARIANT_PENALTY))
    # The same words cut by the segmenter, so words typed together may match apart in a name
    # ("公章刻制许可" -> 公章 刻制 许可 finds 公章刻制业特种行业许可证核发), scored as all-words.
    for p in list(out):
        cut = tuple(w for word in p.words for w in segment(word))
        if len(cut) > len(p.words) and len(cut) <= MAX_SEGMENTS:
            out.append(_Phrase(cut, max(p.penalty, VARIANT_PENALTY)))
    out += _synonym_phrases(query)
    compact = query.replace(" ", "")
    hits = [
        alias
        for alias in aliases
        if alias.alias in compact
        or (
            _LATIN.match(compact) is not None
            and compact in (alias.pinyin, alias.initials)
            and len(compact) >= 2
        )
    ]
    # An alias inside a longer alias that also matched is part of it (户口 in 迁户口): the longer one
    # says more precisely what was meant, so the shorter one's targets rank a point below.
    inner = {a.alias for a in hits if any(a.alias != b.alias and a.alias in b.alias for b in hits)}
    for alias in hits:
        # What the alias leaves over, without fillers and generic act words: when that still holds
        # two characters or more (集体…迁移, 潜水艇, a typo such as 签移), the alias answers only part
        # of the query; its targets with the leftover words answer all of it.
        # (An alias inside a longer one leaves over what the longer one does.)
        span = max((b.alias for b in hits if alias.alias in b.alias), key=len)
        left = strip_fillers(compact.replace(span, " ")) if span in compact else ""
        leftover = [w for word in left.split() for w in segment(word) if w not in GENERIC_WORDS]
        rest = meaningful_words(left) if left else ()
        cap = PARTIAL + len(span) if sum(map(len, leftover)) >= 2 else None
        penalty = VARIANT_PENALTY + (1 if alias.alias in inner else 0)
        for target in alias.targets:
            out.append(_Phrase(tuple(target.split()), penalty, cap))
            if rest and len(rest) + len(target.split()) <= MAX_SEGMENTS:
                out.append(_Phrase((*target.split(), *rest), penalty))
        if alias.alias != compact:
            out.append(_Phrase((alias.alias,), penalty, cap))
    unique: dict[tuple[str, ...], _Phrase] = {}
    for p in out:
        if p.words and (p.words not in unique or _ceiling(unique[p.words]) < _ceiling(p)):
            unique[p.words] = p
    return list(unique.values())


def _subject_phrase(query: str) -> _Phrase | None:
    """What the query is about without the act it names or a licence head ("X证" asks for the licence
    for X, which the catalogue names X许可 / X资格认定 / X核发): all its words in one name, tried when
    no name holds all the words as typed."""
    subject = subject_words(query)
    if not subject or len(subject) > MAX_SEGMENTS:
        return None
    acts = tuple(
        dict.fromkeys(
            w.removesuffix("证")
            for part in strip_fillers(query).split()
            for w in segment(part)
            if w in GENERIC_WORDS and len(w.removesuffix("证")) >= 2
        )
    )
    return _Phrase(subject, VARIANT_PENALTY, SUBJECT, prefer=acts)


def _ceiling(p: _Phrase) -> tuple[int, int, int]:
    """Which of two phrases with the same words to keep: the uncapped one, then the smaller penalty."""
    return (0, p.cap, -p.penalty) if p.cap is not None else (1, 0, -p.penalty)


def _synonym_phrases(query: str) -> list[_Phrase]:
    """The query (as typed, and without fillers) with one of its words swapped for a thesaurus
    synonym: contiguous ("户口迁移" -> 户籍迁移) and as all-words (户籍 迁移), one swap at a time."""
    out: list[_Phrase] = []
    # Without fillers first: the words that say what the query is about are the ones worth swapping.
    bases = [strip_fillers(query).replace(" ", ""), query.replace(" ", "")]
    for base in dict.fromkeys(b for b in bases if has_cjk(b)):
        cut = segment(base)
        if len(cut) > MAX_SEGMENTS:
            continue
        for i, word in enumerate(cut):
            # How a question is asked (办理, 需要, 的) and the kind of act (许可, 登记) say nothing about
            # what it is about: swapping them (办理 -> 操办, 的 -> 之) only spent the phrases' budget.
            if word in FILLER_WORDS or word in GENERIC_WORDS:
                continue
            for syn in synonyms(word):
                swapped = (*cut[:i], syn, *cut[i + 1 :])
                out.append(_Phrase(("".join(swapped),), SYNONYM_PENALTY, typo_ok=False))
                if len(swapped) > 1:
                    out.append(_Phrase(swapped, SYNONYM_PENALTY, typo_ok=False))
    return out[:MAX_SYNONYM_PHRASES]


# The term lookups of the search running in this context: one search asks the same lookup several
# times (a word in the phrase as typed, cut by the segmenter, with a synonym swapped...), and a lookup
# restricted to some terms is answered from the same grams' unrestricted lookup when that was read.
# Set for the length of one ``search`` call (one statement snapshot), never across calls.
_LOOKUPS: contextvars.ContextVar[dict[Any, list[tuple[int, str, str, str]]] | None] = contextvars.ContextVar(
    "search_term_lookups", default=None
)


def _candidate_terms(
    conn: sa.Connection, gram_set: set[str], need: int, within: set[int] | None = None
) -> list[tuple[int, str, str, str]]:
    if not gram_set:
        return []
    memo = _LOOKUPS.get()
    grams = tuple(sorted(gram_set))
    key: Any = (grams, need)
    if memo is not None:
        if key in memo:
            rows = memo[key]
            return rows if within is None else [r for r in rows if r[0] in within]
        if within is not None:
            key = (grams, need, tuple(sorted(within)))
            if key in memo:
                return memo[key]
    params: dict[str, Any] = {"grams": list(grams), "need": need}
    if within is None:
        found = [tuple(r) for r in conn.execute(_q(conn).candidates, params)]
    else:
        found = [
            tuple(r) for r in conn.execute(_q(conn).candidates_within, {**params, "within": sorted(within)})
        ]
    if memo is not None:
        memo[key] = found
    return found


def _word_score(word: str, text: str, pinyin: str, initials: str) -> int:
    if word in text:
        return EXACT if text == word else PREFIX if text.startswith(word) else CONTAINS
    if _LATIN.match(word):
        return pinyin_match(word, pinyin, initials) - VARIANT_PENALTY if len(word) >= 2 else 0
    return 0


def _match_phrase(conn: sa.Connection, phrase: _Phrase) -> dict[int, tuple[int, str]]:
    """Terms matching every word of the phrase -> (score, text)."""
    per_word: list[dict[int, tuple[int, str]]] = []
    within: set[int] | None = None
    # Longest word first: usually the rarest, so the later (commoner) words look only among its terms.
    for word in sorted(phrase.words, key=len, reverse=True):
        found: dict[int, tuple[int, str]] = {}
        candidates = _candidate_terms(conn, query_grams(word), len(query_grams(word)), within)
        if _LATIN.match(word) and len(word) >= 2:
            pg = {"#" + word[i : i + 2] for i in range(len(word) - 1)}
            candidates += _candidate_terms(conn, pg, len(pg), within)
        for tid, text, py, ini in candidates:
            s = _word_score(word, text, py, ini)
            if s > 0 and s > found.get(tid, (0, ""))[0]:
                found[tid] = (s, text)
        if not found and phrase.typo_ok:
            # (Not for a thesaurus swap: that is a guess already, and each try costs a lookup.)
            found = _match_abbreviation(conn, word, within)
        per_word.append(found)
        if not found:
            return {}
        within = set(found) if within is None else within & set(found)
        if not within:
            return {}
    common = set(per_word[0]).intersection(*per_word[1:])
    out = {}
    for tid in common:
        score = per_word[0][tid][0] if len(per_word) == 1 else min(ALL_WORDS, *(w[tid][0] for w in per_word))
        score -= phrase.penalty
        if phrase.cap is not None:
            score = min(score, phrase.cap)
        text = per_word[0][tid][1]
        if phrase.prefer and not any(w in text for w in phrase.prefer):
            score -= 1
        out[tid] = (score, text)
    return out


def _match_abbreviation(
    conn: sa.Connection, word: str, within: set[int] | None
) -> dict[int, tuple[int, str]]:
    """Terms holding ``word`` as an abbreviation (``text.abbreviation_span``), tried only for a word no
    term holds as it is: one indexed lookup of the terms holding all its characters."""
    chars = set(word)
    if not 2 <= len(word) <= 4 or not has_cjk(word):
        return {}
    out = {}
    for tid, text, _py, _ini in _candidate_terms(conn, chars, len(chars), within):
        if abbreviation_span(word, text) is not None:
            out[tid] = (ABBREVIATION, text)
    return out


def _match_fuzzy(conn: sa.Connection, phrase: str) -> dict[int, tuple[int, str]]:
    chars = set(phrase)
    if len(phrase) < 3 or not has_cjk(phrase):
        return {}
    out = {}
    for tid, text, _py, _ini in _candidate_terms(conn, chars, max(1, len(chars) - 1)):
        if within_one_edit(phrase, text):
            out[tid] = (FUZZY, text)
    return out


def _match_partial(
    conn: sa.Connection, query: str, aliases: list[Alias], corrected: bool = False
) -> tuple[dict[int, tuple[int, str]], set[str]]:
    """Names holding more than half of the query's meaningful characters, two of its words, or one
    of them of ``LONG_WORD`` characters or more (closest matches).

    "More than half" keeps nonsense out: 火星移民申请 shares at most 移民 with a name (2 of 4), so it
    still finds nothing, while 夜间施工噪音许可 finds 夜间建筑施工许可 (4 of 6). A question says more
    than a name, so two of its words found together ("工资被拖欠申请劳动仲裁": 劳动 … 仲裁) or one
    long word (法律援助) are enough too; none of the tuning half's no-answer queries has either,
    while its answerable ones often do. Each word is one
    indexed lookup, as any query word is; the words are few (at most ``MAX_SEGMENTS``). A word is
    covered by the word itself, a thesaurus synonym or, when it is an alias, the alias's targets;
    in a ``corrected`` query (a guess at what was meant) by the word itself only.
    """
    words = meaningful_words(query, licences=True)[:MAX_SEGMENTS]
    total = sum(len(w) for w in words)
    if not words:
        return {}, set()
    covered: dict[int, int] = {}
    known = 0  # words some name covers
    spread: list[int] = []
    rarest_of: list[tuple[int, int]] = []  # (names covering the word, word index)
    which: dict[int, list[int]] = {}  # the indices of the words a name covers
    texts: dict[int, str] = {}
    hit_words: dict[int, set[str]] = {}
    # Names covering some word by more than a generic act word: a synonym such as 注册 -> 登记 counts
    # beside a word that says what the query is about (注册一个公司: 公司设立登记), but alone it says
    # no more than 登记 typed alone would, which is nothing (怎么注册微信公众号 must not list every
    # 登记 name).
    telling: set[int] = set()
    reached_by_word: list[set[int]] = []
    for i, word in enumerate(words):
        # A name holding the word, a thesaurus synonym of it or its alias targets covers it (once).
        reached: dict[int, tuple[str, tuple[str, ...]]] = {}
        forms: list[tuple[str, ...]] = [(word,)]
        if not corrected:  # one guess at a time: a corrected query's words count only as they are
            forms += [(form,) for form in synonyms(word)[:MAX_PARTIAL_SYNONYMS]]
            forms += [tuple(t.split()) for a in aliases if a.alias == word for t in a.targets]
        for form in forms:
            for tid, (_score, text) in _match_phrase(conn, _Phrase(form, 0)).items():
                reached.setdefault(tid, (text, form))
        # As an abbreviation too, even when some name holds it as typed (医保 is in 医保电子凭证申领
        # and, shortened, in every 医疗保险 name).
        for tid, (_score, text) in _match_abbreviation(conn, word, None).items():
            reached.setdefault(tid, (text, (word,)))
        known += 1 if reached else 0
        reached_by_word.append(set(reached))
        if reached:
            spread.append(len(reached))
            rarest_of.append((len(reached), i))
        for tid, (text, form) in reached.items():
            covered[tid] = covered.get(tid, 0) + len(word)
            which.setdefault(tid, []).append(i)
            texts[tid] = text
            hit_words.setdefault(tid, set()).update(form)
            if form != (word,) and all(f in GENERIC_WORDS for f in form):
                continue
            telling.add(tid)
    # A word the name leaves out may be said by the body that does it: 医保 in 医保异地备案 is the
    # 医疗保障局 of 异地长期居住人员备案, 社保 the 人力资源和社会保障局 of a 参保 name. Citizens name the
    # body as part of the service; the catalogue keeps it apart. So a word some department text covers
    # counts for the names of that department's entries, beside what they cover themselves.
    # It ranks the names that answer the question by their own words; it makes no name an answer.
    by_body: dict[int, int] = {}
    for tid, i in _department_cover(conn, reached_by_word, set(telling)):
        if i not in which[tid]:
            by_body[tid] = by_body.get(tid, 0) + len(words[i])
    # The act the query names (申请, 备案, 登记 ...) decides nothing alone, but of two names covering
    # as much of the rest, the one doing that act is the closer.
    acts = [w for part in query.split() for w in segment(part) if w in GENERIC_WORDS]
    # And of two names covering as much, the one holding the word fewest names hold is the closer: it
    # is the word that says most precisely what the query is about (低保, not 农村, in 农村低保).
    fewest = min(spread, default=0)
    rare = {i for n, i in rarest_of if n == fewest} if len(rarest_of) > 1 else set()
    out = {}
    for tid, n in covered.items():
        longest = max(len(words[i]) for i in which[tid])
        # Half is enough when every word is one the catalogue knows (农村低保: 农村 and 低保 are both
        # in names, not together): a word no name holds (火星, 恐龙, 潜水艇) says the query is about
        # something the catalogue does not have, and then only more than half will do.
        enough = 2 * n > total or (2 * n == total and known == len(words) and len(words) > 1)
        if tid in telling and (enough or len(which[tid]) >= MIN_COOCCURRING or longest >= LONG_WORD):
            same_act = any(a in texts[tid] for a in acts)
            bonus = (1 if same_act else 0) + (1 if rare.intersection(which[tid]) else 0)
            out[tid] = (PARTIAL + n + by_body.get(tid, 0) + bonus, texts[tid])
    used = set().union(*(hit_words[tid] for tid in out)) if out else set()
    return out, used


def heard_alias_fixes(query: str, aliases: list[Alias], limit: int = 2) -> list[str]:
    """The query with a run that sounds like an alias but is typed otherwise (医报 for 医保, 养牢金 for
    养老金, 营也执照 for 营业执照) written as the alias: aliases are the words citizens use, so they are
    the words a pinyin IME most often slips on. At most a third of the run's characters differ (one
    in a word of two to five), each read the same as the alias's; the longest aliases first."""
    compact = query.replace(" ", "")
    if not has_cjk(compact):
        return []
    heard = sound_keys(compact)
    if len(heard) != len(compact):
        return []
    out: list[str] = []
    for alias in sorted(aliases, key=lambda a: -len(a.alias)):
        word = alias.alias
        n = len(word)
        if n < 2 or n > len(compact) or word in compact or not all(has_cjk(c) for c in word):
            continue
        keys = sound_keys(word)
        for at in range(len(compact) - n + 1):
            run = compact[at : at + n]
            differ = sum(a != b for a, b in zip(run, word, strict=True))
            if 0 < differ <= max(1, n // 3) and heard[at : at + n] == keys:
                fixed = compact[:at] + word + compact[at + n :]
                if fixed not in out:
                    out.append(fixed)
                break
        if len(out) >= limit:
            break
    return out


def _merge(
    term_scores: dict[int, int], term_texts: dict[int, str], found: dict[int, tuple[int, str]]
) -> None:
    """Take what one way of matching found: each name keeps the best score any way gave it."""
    for tid, (score, text) in found.items():
        if score > term_scores.get(tid, 0):
            term_scores[tid] = score
            term_texts[tid] = text


def _point_below(
    term_scores: dict[int, int], term_texts: dict[int, str], lower: Callable[[str], Any]
) -> None:
    """A point off each matched name for which ``lower(name)`` holds, never below a score of 1 (a
    tie-break among names otherwise equal: it reorders, it never drops a name)."""
    for tid, text in term_texts.items():
        if tid in term_scores and term_scores[tid] > 1 and lower(text):
            term_scores[tid] -= 1


def _department_cover(
    conn: sa.Connection, reached_by_word: list[set[int]], names: set[int]
) -> list[tuple[int, int]]:
    """(name term, word index) for each of ``names`` whose entries a department text reached by that
    word implements: one statement over the department postings of the terms the words reached."""
    reached = set().union(*reached_by_word) if reached_by_word else set()
    if not reached or not names:
        return []
    rows = conn.execute(_q(conn).department_cover, {"reached": sorted(reached), "names": sorted(names)})
    out = []
    for dept_tid, name_tid in rows:
        out += [(name_tid, i) for i, tids in enumerate(reached_by_word) if dept_tid in tids]
    return out


def _match_characters(conn: sa.Connection, query: str) -> tuple[dict[int, tuple[int, str]], set[str]]:
    """Names holding at least ``CHARACTER_SHARE`` of the distinct characters of the query's
    meaningful words, the last resort before saying nothing was found.

    Words people shorten or cut differently (出租车营运证 -> 网络预约出租汽车运输证, 社保转移 ->
    社会保障卡参保地转移) still share most of their characters with the name. The share is set on
    the tuning half of the labelled set: there, no query about something the catalogue does not
    hold reaches 3 in 4 of its characters in one name (宅基地审批 reaches 2 of 3, 恐龙饲养证 2 of 4),
    while answerable ones do. One indexed lookup (the characters' grams); ranked by characters held.
    """
    chars = sorted({ch for w in meaningful_words(query) for ch in w if has_cjk(ch)})
    if len(chars) < 2:
        return {}, set()
    need = math.ceil(CHARACTER_SHARE * len(chars))
    out: dict[int, tuple[int, str]] = {}
    used: set[str] = set()
    for tid, text, _py, _ini in _candidate_terms(conn, set(chars), need):
        held = [ch for ch in chars if ch in text]
        if len(held) >= need:
            out[tid] = (PARTIAL - 1 + len(held) - len(chars), text)
            used.update(held)
    return out, used


def _match_homophone(conn: sa.Connection, query: str) -> tuple[dict[int, tuple[int, str]], dict[int, str]]:
    """Names that hold the query with some characters swapped for same- or near-sounding ones.

    The query as typed, then without its filler words (scored as a variant, so 居民身份正办理 prefers
    居民身份证办理 over any 居民身份证 name), then each run of words the fillers left apart.
    Candidates share all but a third of the phrase's characters (one indexed lookup, as the one-edit
    fallback does); each is then aligned in Python (``sound_align``). Returns term -> (score, text)
    and term -> the query as corrected on that term.
    """
    found: dict[int, tuple[int, str]] = {}
    corrected: dict[int, str] = {}
    typed = query.replace(" ", "")
    stripped = strip_fillers(query).replace(" ", "")
    variants = [(typed, 0)] + ([(stripped, VARIANT_PENALTY)] if stripped and stripped != typed else [])
    # Each run of words between fillers alone, too (残疾人正换了去哪办 -> 残疾人正): a question's other
    # words need not be in the name for its typo'd service word to be corrected.
    # (Only runs that fillers cut out: words the user typed apart are matched apart already.)
    chunks = strip_fillers(query).split()
    if len(chunks) > 1:
        typed_words = set(query.split())
        variants += [(c, VARIANT_PENALTY + 1) for c in dict.fromkeys(chunks) if c not in typed_words]
    for phrase, penalty in variants:
        if len(phrase) < 3 or not has_cjk(phrase):
            continue
        chars = set(phrase)
        max_subs = max(1, len(phrase) // 3)
        need = max(2, len(chars) - max_subs)
        candidates = _candidate_terms(conn, chars, need)
        held = {tid: text for tid, text, _py, _ini in candidates if phrase in text}
        if penalty > VARIANT_PENALTY and held:
            # A run of the question that names hold as typed was typed right (失业登记 of 失业登记怎么
            # 操作的): no sound-alike reading of it (事业登记) is offered; the names holding it are
            # closest matches, scored as one covering that many characters.
            for tid, text in held.items():
                if PARTIAL + len(phrase) > found.get(tid, (0, ""))[0]:
                    found[tid] = (PARTIAL + len(phrase), text)
            continue
        for tid, text, _py, _ini in candidates:
            placed = sound_align(phrase, text, max_subs=max_subs, max_gaps=max_subs)
            if placed is None:
                continue
            gaps, _subs, positions = placed
            score = HOMOPHONE - gaps - penalty
            if score > found.get(tid, (0, ""))[0]:
                found[tid] = (score, text)
                corrected[tid] = "".join(text[k] for k in positions)
    return found, corrected


def search(
    session: Session,
    q: str | None,
    filters: SearchFilters | None = None,
    page: int = 1,
    limit: int = 10,
    log_miss: bool = False,
    use_aliases: bool = True,
    group: bool = False,
    place: str | None = None,
) -> SearchResult:
    """Search published entries. Never raises on odd text: it is normalised and bounded first.

    ``use_aliases=False`` leaves the alias table out (the evaluation's aliases-off run measures what
    the engine finds without it). ``group=True`` gives one result per service (basic item), each with
    where it can be done, ``place`` (a division code, the citizen's place) first.
    """
    token = _LOOKUPS.set({})
    try:
        return _search(session, q, filters, page, limit, log_miss, use_aliases, group, place)
    finally:
        _LOOKUPS.reset(token)


def _search(
    session: Session,
    q: str | None,
    filters: SearchFilters | None,
    page: int,
    limit: int,
    log_miss: bool,
    use_aliases: bool,
    group: bool,
    place: str | None,
) -> SearchResult:
    filters = filters or SearchFilters()
    page = min(max(int(page), 1), MAX_PAGE)
    limit = min(max(int(limit), 1), MAX_LIMIT)
    query = normalize_query(q)
    if not query:
        return browse(session, filters, page, limit, group=group, place=place)
    conn = session.connection()
    e = _t(SearchEntry)

    term_scores: dict[int, int] = {}
    term_texts: dict[int, str] = {}
    aliases = active_aliases(session) if use_aliases else []
    phrases = _phrases(query, aliases)
    matched_words: set[str] = set()
    # What an alias inside a longer query reached, at the score it would have had uncapped.
    part_hits: dict[int, int] = {}
    for phrase in phrases:
        found = _match_phrase(conn, phrase)
        if found:
            matched_words.update(phrase.words)
        _merge(term_scores, term_texts, found)
        if phrase.cap is not None:
            uncapped = _match_phrase(conn, _Phrase(phrase.words, phrase.penalty)) if found else {}
            for tid, (score, _text) in uncapped.items():
                part_hits[tid] = max(part_hits.get(tid, 0), score)
    subject = _subject_phrase(query)
    if (
        subject is not None
        and subject.words not in {p.words for p in phrases}
        and max(term_scores.values(), default=0) < ALL_WORDS - VARIANT_PENALTY
    ):
        found = _match_phrase(conn, subject)
        if found:
            matched_words.update(subject.words)
        _merge(term_scores, term_texts, found)
    suggestion = None
    fixes: list[str] = []
    if max(term_scores.values(), default=0) < CONTAINS - VARIANT_PENALTY:
        # Corrections read from the query alone: a character read like 证 where 证 would stand, and a
        # two-character run no dictionary knows made a word by a same-sounding character (低宝 ->
        # 低保). Each is matched as a query would be, at the homophone tier.
        candidates = [
            licence_head_fixed(query), *two_character_fixes(query), *heard_alias_fixes(query, aliases)
        ]
        fixes = list(dict.fromkeys(f for f in candidates if f != query))
        for fixed in fixes:
            best_before = max(term_scores.values(), default=0)
            best_fixed = 0
            fixed_subject = _subject_phrase(fixed)
            for phrase in [*_phrases(fixed, aliases), *([fixed_subject] if fixed_subject else [])]:
                found = _match_phrase(conn, phrase)
                if found:
                    matched_words.update(phrase.words)
                for tid, (score, text) in found.items():
                    # The corrected query found as typed is a correction (HEAD_FIXED); a variant of
                    # it ranks its penalty lower, its subject words alone a point (two when the name
                    # lacks the act the query named) lower.
                    if phrase is fixed_subject:  # not by its cap: an alias phrase's cap can equal it
                        score = HEAD_FIXED - 1 - (SUBJECT - score)
                    else:
                        score = min(score, HEAD_FIXED - phrase.penalty)
                    best_fixed = max(best_fixed, score)
                    if score > term_scores.get(tid, 0):
                        term_scores[tid] = score
                        term_texts[tid] = text
            if best_fixed > best_before:
                suggestion = fixed.replace(" ", "")
        # Nothing holds the query as typed: try it as heard (a pinyin IME's commonest typo).
        sounded, corrected = _match_homophone(conn, query)
        _merge(term_scores, term_texts, sounded)
        if sounded:
            best = min(
                sounded, key=lambda tid: (-sounded[tid][0], len(sounded[tid][1]), sounded[tid][1], tid)
            )
            if sounded[best][0] >= max(term_scores.values()) and suggestion is None:
                suggestion = corrected.get(best)  # none for a run found as typed
            matched_words.update(corrected.values())
    fuzzy = False
    if not term_scores and _TASK_CODE.match(query.replace(" ", "")):
        t = _t(SearchTerm)
        code_hit = conn.execute(
            sa.select(t.c.id, t.c.text)
            .join(e, e.c.name_term_id == t.c.id)
            .where(e.c.task_code == query.upper())
        ).first()
        if code_hit:
            term_scores[code_hit[0]] = EXACT
            term_texts[code_hit[0]] = code_hit[1]
    if not term_scores:
        for phrase in phrases:
            if len(phrase.words) == 1 and phrase.typo_ok:
                found = _match_fuzzy(conn, phrase.words[0])
                _merge(term_scores, term_texts, found)
                fuzzy = fuzzy or bool(found)
                if term_scores:
                    matched_words.add(phrase.words[0])
                    break

    partial = False
    best_part = max(term_scores.values(), default=0)
    if best_part < FUZZY:
        # Nothing matched the whole query (at most an alias matched part of it): closest matches.
        found, words = _match_partial(conn, query, aliases)
        if not found and not part_hits:
            # None for the query as typed: the closest matches of its first correction that has any
            # (法率援助中心怎么申请免费律师 -> 法律援助…), offered as what was meant.
            for fixed in fixes:
                found, words = _match_partial(conn, fixed, aliases, corrected=True)
                if found:
                    suggestion = suggestion or fixed.replace(" ", "")
                    break
        if part_hits and max((sc for sc, _t in found.values()), default=0) <= best_part:
            # No name covers more of the query than the alias did: the alias's answer stands as it is.
            term_scores.update(part_hits)
        else:
            _merge(term_scores, term_texts, found)
            matched_words.update(words)
            partial = bool(term_scores)
        if not term_scores:
            # Not even whole words: names holding most of the characters of the query's words.
            found, chars = _match_characters(conn, query)
            _merge(term_scores, term_texts, found)
            matched_words.update(chars)
            partial = bool(term_scores)

    if not asks_follow_up(query):
        _point_below(term_scores, term_texts, follow_up_act)
    # The act the query's everyday verb asks for (领 -> 申领 / 领取, 开 -> 设立, 交 -> 缴费 / 参保): of
    # names otherwise equal, one doing another act ranks a point lower.
    wanted = asked_acts(query)
    if wanted:
        _point_below(term_scores, term_texts, lambda text: not any(a in text for a in wanted))
    # A name the query's word heads (退休 in 企业职工…退休申请, followed by the act) is about it; one
    # where the word only qualifies another noun (退休 in 异地安置退休人员备案) is about that noun.
    heads = [w for w in matched_words if len(w) >= 2 and has_cjk(w) and w not in GENERIC_WORDS]
    if heads and not partial:
        _point_below(term_scores, term_texts, lambda text: not any(_heads(w, text) for w in heads))
    scope, with_other = _scope(conn, e, term_scores)
    if group:
        ranked = matched_services(conn, term_scores, term_texts, filters, with_other)
        result = _grouped_result(conn, query, ranked, filters, page, limit, place)
        _highlight(result.items, matched_words, fuzzy)
        if (result.total == 0 or partial) and log_miss:
            log_zero_result(session, query)
        result.variants, result.fuzzy, result.partial, result.suggestion = (
            sorted(matched_words), fuzzy, partial, suggestion
        )
        return result
    per_term: dict[int, int] | None = None
    if term_scores and not with_other and _cells_serve(conn, filters):
        total, facets, per_term = _cell_facets(session, sorted(term_scores), filters)
    else:
        name_ids = None if with_other or not term_scores else sorted(term_scores)
        total, facets = _facets(session, e, scope, filters, name_ids)
    items = (
        _page(conn, e, term_scores, term_texts, filters, page, limit, with_other, per_term) if total else []
    )
    _highlight(items, matched_words, fuzzy)
    # A partial answer is logged too: it is exactly what the alias page and lexicons should learn from.
    if (total == 0 or partial) and log_miss:
        log_zero_result(session, query)
    return SearchResult(
        query, items, total, page, limit, facets, sorted(matched_words), fuzzy, partial, suggestion
    )


# The acts a name ends in: the generic ones, those that follow a first one, and opening acts.
_ACT_WORDS = tuple(sorted(GENERIC_WORDS | set(FOLLOW_UP_ACTS) | {"设立", "开办"}, key=len, reverse=True))


def _heads(word: str, text: str) -> bool:
    """Whether ``word`` stands in ``text`` where the name's subject does: at its end, before an act
    word (申请, 登记, 注销 ...) or before anything but another word (punctuation, a bracket)."""
    start = text.find(word)
    while start >= 0:
        rest = text[start + len(word) :]
        if not rest or not has_cjk(rest[0]) or rest.startswith(_ACT_WORDS):
            return True
        start = text.find(word, start + 1)
    return False


def _scope(conn: sa.Connection, e: sa.Table, term_scores: dict[int, int]) -> tuple[list[Any], bool]:
    """SQL conditions selecting every entry the matched terms reach (by name, or by another field),
    and whether any entry is reached through another field than its name."""
    if not term_scores:
        return [sa.false()], False
    ids = sorted(term_scores)
    p = _t(SearchPosting)
    has_other = conn.execute(_q(conn).has_other, {"ids": ids}).first()
    by_name = e.c.name_term_id.in_(ids)
    if has_other is None:
        return [by_name], False
    others = sa.select(p.c.entry_id).where(p.c.term_id.in_(ids), p.c.field != FIELD_NAME)
    return [sa.or_(by_name, e.c.entry_id.in_(others))], True


def _page(
    conn: sa.Connection,
    e: sa.Table,
    term_scores: dict[int, int],
    term_texts: dict[int, str],
    f: SearchFilters,
    page: int,
    limit: int,
    with_other: bool = True,
    known_per_term: dict[int, int] | None = None,
) -> list[Hit]:
    """The hits of one page, in ranking order, fetching only the rows that page needs."""
    offset = (page - 1) * limit
    # Name matches: terms ordered by (score, length, text), then a term's entries by id.
    per_term: dict[int, int] = {}
    conds = _sql_filters(f, e)
    if known_per_term is not None:
        per_term = known_per_term
    elif conds:
        stmt = (
            sa.select(e.c.name_term_id, sa.func.count())
            .where(e.c.name_term_id.in_(sa.bindparam("ids", expanding=True)), *conds)
            .group_by(e.c.name_term_id)
        )
    else:
        stmt = _q(conn).per_term
    if known_per_term is None:
        for tid, n in conn.execute(stmt, {"ids": sorted(term_scores)}):
            per_term[tid] = int(n)
    name_total = sum(per_term.values())
    hits: list[Hit] = []
    if offset < name_total:
        order = sorted(
            per_term, key=lambda tid: (-term_scores[tid], len(term_texts[tid]), term_texts[tid], tid)
        )
        need_terms, skipped, seen = [], 0, 0
        for tid in order:
            n = per_term[tid]
            if seen + n <= offset:
                seen += n
                skipped += n
                continue
            need_terms.append(tid)
            seen += n
            if seen >= offset + limit:
                break
        rank = {tid: i for i, tid in enumerate(need_terms)}
        # Only the first (offset - skipped + limit) rows in (term rank, entry id) order are needed.
        want = offset - skipped + limit
        rows: list[Any] = []
        for tid in need_terms:
            if conds:
                rows += conn.execute(
                    sa.select(e)
                    .where(e.c.name_term_id == tid, *conds)
                    .order_by(e.c.entry_id)
                    .limit(want - len(rows))
                ).all()
            else:
                rows += conn.execute(_q(conn).term_rows, {"tid": tid, "lim": want - len(rows)}).all()
            if len(rows) >= want:
                break
        rows.sort(key=lambda r: (rank[r.name_term_id], r.entry_id))
        start = offset - skipped
        for r in rows[start : start + limit]:
            hits.append(_hit(r, term_scores[r.name_term_id], FIELD_NAME))
    if len(hits) < limit and with_other:
        other_offset = max(0, offset - name_total)
        hits += _other_rows(conn, e, term_scores, f, other_offset, limit - len(hits))
    return hits


def _other_rows(
    conn: sa.Connection, e: sa.Table, term_scores: dict[int, int], f: SearchFilters, offset: int, limit: int
) -> list[Hit]:
    ids = sorted(term_scores)
    p = _t(SearchPosting)
    best = (
        sa.select(p.c.entry_id, sa.func.min(p.c.field).label("fld"))
        .where(p.c.term_id.in_(ids), p.c.field != FIELD_NAME)
        .group_by(p.c.entry_id)
        .subquery()
    )
    rows = conn.execute(
        sa.select(e, best.c.fld)
        .join(best, best.c.entry_id == e.c.entry_id)
        .where(e.c.name_term_id.not_in(ids), *_sql_filters(f, e))
        .order_by(best.c.fld, e.c.name_len, e.c.entry_id)
        .offset(offset)
        .limit(limit)
    ).all()
    return [_hit(r, FIELD_SCORES[r.fld], r.fld) for r in rows]


def _hit(r: Any, score: int, fld: int) -> Hit:
    return Hit(
        entry_id=r.entry_id,
        task_code=r.task_code,
        name=r.name,
        department_id=r.department_id,
        department=r.department_name,
        level=r.level,
        division_code=r.division_code,
        task_type=r.task_type,
        no_contact=bool(r.no_contact),
        score=score,
        matched_field=FIELD_LABELS[fld],
    )


def _highlight(items: list[Hit], words: set[str], fuzzy: bool) -> None:
    latin = [w for w in words if _LATIN.match(w) and len(w) >= 2]
    plain = [w for w in words if not _LATIN.match(w) or len(w) < 2]
    for hit in items:
        norm = [normalize_text(c) for c in hit.name]
        marks = [False] * len(hit.name)
        flat, owner = "", []
        for i, piece in enumerate(norm):
            flat += piece
            owner += [i] * len(piece)
        for w in plain:
            start = flat.find(w)
            if start < 0 and (span := abbreviation_span(w, flat)) is not None:
                # An abbreviation (医保 in 医疗保险): mark its characters where the name spells them.
                for k in range(span[0], span[1]):
                    if flat[k] in w:
                        marks[owner[k]] = True
            while start >= 0 and w:
                for k in range(start, start + len(w)):
                    marks[owner[k]] = True
                start = flat.find(w, start + len(w))
        if latin:
            syl = syllables(flat)
            for w in latin:
                for i in range(len(syl)):
                    joined = "".join(s for s, _, _ in syl[i:])
                    if joined.startswith(w):
                        used, j = 0, i
                        while used < len(w) and j < len(syl):
                            used += len(syl[j][0])
                            for k in range(syl[j][1], syl[j][2]):
                                marks[owner[k]] = True
                            j += 1
                        break
                ini = "".join(s[0] for s, _, _ in syl)
                pos = ini.find(w)
                if pos >= 0:
                    for j in range(pos, pos + len(w)):
                        for k in range(syl[j][1], syl[j][2]):
                            marks[owner[k]] = True
        spans: list[tuple[int, int]] = []
        for i, m in enumerate(marks):
            if m:
                if spans and spans[-1][1] == i:
                    spans[-1] = (spans[-1][0], i + 1)
                else:
                    spans.append((i, i + 1))
        hit.highlights = spans


def _grouped_result(
    conn: sa.Connection,
    query: str,
    ranked: Ranked,
    filters: SearchFilters,
    page: int,
    limit: int,
    place: str | None,
) -> SearchResult:
    """One page of services: each service's first place (the citizen's own first) as its hit."""
    chosen = ranked.services[(page - 1) * limit : page * limit]
    groups, first = page_places(conn, [k for k, _ in chosen], filters, place)
    items: list[Hit] = []
    services: list[ServiceGroup] = []
    for key, rank in chosen:
        if key not in first:  # the entry left the index between the two reads
            continue
        if rank[0] == 0:  # a name match
            items.append(_hit(first[key], -rank[1], FIELD_NAME))
        elif rank[0] == 1:  # a keyword, department or material match
            items.append(_hit(first[key], FIELD_SCORES[rank[1]], rank[1]))
        else:  # browsing: no score
            items.append(_hit(first[key], 0, FIELD_NAME))
        services.append(groups[key])
    return SearchResult(
        query, items, ranked.total, page, limit, ranked.facets, [], grouped=True, services=services
    )


def browse(
    session: Session,
    filters: SearchFilters,
    page: int = 1,
    limit: int = 10,
    group: bool = False,
    place: str | None = None,
) -> SearchResult:
    """No query: the entries under the filters (browse by town/village, department, type), by name.

    With no filter at all the answer is empty: the portal shows its home page instead of a full list.
    """
    if not filters.active():
        return SearchResult("", [], 0, page, limit, _empty_facets(), [], grouped=group)
    conn = session.connection()
    if group:
        return _grouped_result(conn, "", browsed_services(conn, filters), filters, page, limit, place)
    e = _t(SearchEntry)
    total, facets = _facets(session, e, [], filters)
    rows = conn.execute(
        sa.select(e)
        .where(*_sql_filters(filters, e))
        .order_by(e.c.name_len, e.c.entry_id)
        .offset((page - 1) * limit)
        .limit(limit)
    ).all()
    items = [_hit(r, 0, FIELD_NAME) for r in rows]
    return SearchResult("", items, total, page, limit, facets, [])
