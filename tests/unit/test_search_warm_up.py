"""The web server's worker hook loads the search's tables (segmenter, pinyin, thesaurus, two-character
words) up front."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter: in the test process another test may have loaded them already.
PROBE = """
import json
from types import SimpleNamespace
from catalog.search import lexicon, text
loaded = lambda: (text._segmenter.cache_info().currsize, text.pinyin_of.cache_info().currsize,
                  lexicon._table.cache_info().currsize, text._two_character_words.cache_info().currsize)
before = loaded()
said = []
from webapp.gunicorn_conf import post_worker_init
post_worker_init(SimpleNamespace(log=SimpleNamespace(info=lambda *a: said.append(a[0] % a[1:]))))
print(json.dumps({"before": before, "after": loaded(), "said": said}))
"""


def test_the_worker_hook_loads_segmenter_pinyin_and_thesaurus_before_the_first_request() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["before"] == [0, 0, 0, 0]
    segmenter, pinyin, thesaurus, two_character_words = probe["after"]
    assert segmenter == 1
    assert pinyin >= 1
    assert thesaurus == 1
    assert two_character_words == 1
    assert probe["said"][0].startswith("search tables loaded in ")
