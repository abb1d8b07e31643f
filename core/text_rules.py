"""Characters no stored text may hold: one definition for the web boundary (core.input_guard) and the
readers of operators' files (core.csv_input), which must not import Flask (the Celery workers read the
holiday notices file through it).

PostgreSQL refuses NUL in text, a lone surrogate cannot be encoded to UTF-8, and the XLSX exports
cannot hold C0 controls. Tab, LF and CR are allowed (multi-line text)."""

from __future__ import annotations

import re

# C0 controls but tab, LF and CR; DEL, C1 controls and UTF-16 surrogates (only a lone one can reach a str).
IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

FIELD_MESSAGE = "不能包含控制字符（如 NUL）或无效的 Unicode 字符"
