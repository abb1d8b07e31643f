"""Personal data in free text: one function that masks it before text is stored or logged.

Free text that nobody validated (a search query that found nothing, a log line, an exception
message that quotes a database value) can hold a 公民身份号码, a phone number, a 统一社会信用代码 of
a sole trader, a name after a label such as 姓名, a password hash or an API token. The patterns are
deliberately wider than the validators (no check digits): a false positive costs a few masked
characters, a false negative leaks a person.
"""

from __future__ import annotations

import re
from collections.abc import Callable

MASK = "*"

# Letters and digits around a match mean it is part of a longer token (a request id, a hash).
_B = r"(?<![0-9A-Za-z])"
_E = r"(?![0-9A-Za-z])"

# 公民身份号码: 18 characters (GB 11643: area, birth date, sequence, check character) or the
# legacy 15 digits. The date part is loose on purpose.
# People type it in groups too (321203 19900307 001X): a space or hyphen may part area, date and tail.
_ID18 = re.compile(_B + r"[1-9]\d{5}[ -]?(?:18|19|20)\d{2}[01]\d[0-3]\d[ -]?\d{3}[\dXx]" + _E)
_ID15 = re.compile(_B + r"[1-9]\d{7}[01]\d[0-3]\d\d{3}" + _E)
# 统一社会信用代码 (GB 32100): 18 characters of the code alphabet with 8 digits after the first two.
# An organisation's code is public (and is part of every licence identifier the logs trace), so
# it is masked only where it can point at a person: a sole trader's code (个体工商户, "92"), or a
# code next to Chinese text (a holder's name beside it, as people type it into a search box).
_USCC = re.compile(_B + r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}" + _E)
_HAN = re.compile(r"[\u4e00-\u9fff]")
_NEAR = 4
# Mainland mobile numbers, optionally with +86 / 86, and landlines with an area code.
_MOBILE = re.compile(r"(?<![0-9A-Za-z+])(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}" + _E)
_LANDLINE = re.compile(_B + r"0\d{2,3}-\d{7,8}" + _E)
# Password hashes (argon2 and bcrypt) and our API tokens are credentials wherever they appear.
_ARGON2 = re.compile(r"\$argon2(?:id|i|d)\$[^\s\"';)\]}]+")  # the parameters hold commas
_BCRYPT = re.compile(r"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}")
_API_TOKEN = re.compile(r"(?<![0-9A-Za-z_-])gg_[A-Za-z0-9_-]{20,}")
# A name after a label that says it is one: 姓名：张三, 持证人=李四, 申请人 王五.
_NAMED = re.compile(
    r"(姓名|持证人|申请人|联系人|法定代表人|法人代表|负责人|户主|经办人|当事人|患者|学生|本人)"
    r"(\s*[:：=]?\s*)"
    r"([\u4e00-\u9fff·•]{2,5})"
)


def _keep(head: int, tail: int) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        digits = [i for i, ch in enumerate(text) if ch.isalnum()]
        keep = set(digits[:head]) | (set(digits[-tail:]) if tail else set())
        return "".join(ch if (i in keep or not ch.isalnum()) else MASK for i, ch in enumerate(text))

    return replace


def _uscc(match: re.Match[str]) -> str:
    code, text = match.group(0), match.string
    around = text[max(0, match.start() - _NEAR) : match.start()] + text[match.end() : match.end() + _NEAR]
    if code.startswith("92") or _HAN.search(around):
        return _keep(8, 2)(match)
    return code


def _named(match: re.Match[str]) -> str:
    name = match.group(3)
    return match.group(1) + match.group(2) + name[0] + MASK * (len(name) - 1)


# Order matters: credentials first (they contain digit runs), then the 18-character codes before
# the shorter numbers that could match inside them.
_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str] | str], ...] = (
    (_ARGON2, "$argon2[已隐藏]"),
    (_BCRYPT, "$2b$[已隐藏]"),
    (_API_TOKEN, "gg_[已隐藏]"),
    (_ID18, _keep(6, 4)),
    (_USCC, _uscc),
    (_ID15, _keep(6, 3)),
    (_MOBILE, _keep(3, 4)),
    (_LANDLINE, _keep(4, 2)),
    (_NAMED, _named),
)


def mask_personal_data(text: str) -> str:
    """``text`` with identity numbers, phone numbers, credit codes, labelled names and credentials
    masked (``321203********1234``, ``138****5678``, ``姓名：张*``, ``$argon2[已隐藏]``).

    Idempotent: masking a masked text changes nothing."""
    if not text:
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text
