"""Official codes and their check digits (standards §1.2, §4, §5).

Pure functions, no I/O: 统一社会信用代码 (GB 32100-2015) with the embedded 组织机构代码
(GB 11714) check, 居民身份证号 (GB 11643-1999), 基本编码 and 实施编码 layouts, and the level of a
12-digit 统计用区划代码. The GB 32100 and GB 11643 check characters come from python-stdnum
(tested against the real examples of standards §4); the messages users read are the project's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from stdnum.cn import ric, uscc

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]

# GB 32100 registration authority (1st char) and the org kinds allowed under it (2nd char).
_USCC_KINDS = {"1": "1239", "5": "1239", "9": "123", "Y": "1"}
for _authority in "2345678ABCDEFGNY":
    _USCC_KINDS.setdefault(_authority, "123456789")

CATALOG_CODE_RE = re.compile(r"^[0-9A-Z]{12}$")


@dataclass(frozen=True)
class CodeCheck:
    """Result of validating a code: ``ok`` False means reject; ``warning`` means accept but show it."""

    ok: bool
    message: str | None = None
    warning: str | None = None


def uscc_check_char(first17: str) -> str:
    """GB 32100 check character of the first 17 characters (already checked against USCC_CHARS)."""
    return str(uscc.calc_check_digit(first17))


def org_code_check_char(first8: str) -> str:
    def value(c: str) -> int:
        return int(c) if c.isdigit() else ord(c) - 55

    r = 11 - sum(value(c) * w for c, w in zip(first8, _ORG_WEIGHTS, strict=True)) % 11
    return {10: "X", 11: "0"}.get(r, str(r))


def check_uscc(code: str) -> CodeCheck:
    """Validate a 统一社会信用代码.

    Shape errors (length, characters, registration authority, division) are rejections. A wrong
    check character is only a warning: real pre-2016 工商 codes fail it (standards §4).
    """
    if not isinstance(code, str) or len(code) != 18:
        return CodeCheck(False, "统一社会信用代码应为 18 位")
    if any(c not in USCC_CHARS for c in code):
        bad = next(c for c in code if c not in USCC_CHARS)
        return CodeCheck(False, f"统一社会信用代码含非法字符 {bad!r}（不得含 I、O、S、V、Z 及小写字母）")
    if code[0] not in "123456789ABCDEFGNY":
        return CodeCheck(False, "统一社会信用代码第 1 位（登记管理部门代码）无效")
    if not code[2:8].isdigit():
        return CodeCheck(False, "统一社会信用代码第 3-8 位应为行政区划代码")
    warnings = []
    if uscc_check_char(code[:17]) != code[17]:
        warnings.append(f"校验位应为 {uscc_check_char(code[:17])}，实为 {code[17]}")
    org = code[8:17]
    if org_code_check_char(org[:8]) != org[8]:
        warnings.append("内含组织机构代码校验位不符")
    if warnings:
        prefix = "统一社会信用代码校验未通过（2016 年前赋码的可能如此）："
        return CodeCheck(True, warning=prefix + "；".join(warnings))
    return CodeCheck(True)


def is_valid_uscc(code: str) -> bool:
    """Strict: shape and both check characters."""
    result = check_uscc(code)
    return result.ok and result.warning is None


def make_uscc(head8: str, org8: str) -> str:
    """A USCC passing both checks from authority+kind+division (8) and an org-code body (8).

    Used for demo and synthetic data; real codes come from the registration authorities.
    """
    first17 = head8 + org8 + org_code_check_char(org8)
    return first17 + uscc_check_char(first17)


def make_org_code(first8: str) -> str:
    return first8 + org_code_check_char(first8)


def id_check_char(first17: str) -> str:
    """GB 11643 check character of the first 17 digits."""
    # stdnum takes the whole 18-character number and ignores its last character.
    return str(ric.calc_check_digit(first17 + "0"))


def check_id_number(code: str) -> CodeCheck:
    """Validate a 18-digit 居民身份证号 (GB 11643-1999): digits, birth date, check character."""
    if not isinstance(code, str) or len(code) != 18:
        return CodeCheck(False, "公民身份号码应为 18 位")
    # str.isdigit() is true for full-width (３), superscript (²) and other scripts' digits, which
    # int() then reads or refuses: an ID number is written in ASCII digits and X only.
    if not code.isascii() or not code[:17].isdigit() or not (code[17].isdigit() or code[17] == "X"):
        return CodeCheck(False, "公民身份号码前 17 位应为半角数字，末位为半角数字或 X")
    try:
        born = date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
    except ValueError:
        return CodeCheck(False, "公民身份号码中的出生日期无效")
    if born.year < 1900:
        return CodeCheck(False, "公民身份号码中的出生日期无效")
    if id_check_char(code[:17]) != code[17]:
        return CodeCheck(False, f"公民身份号码校验位错误（应为 {id_check_char(code[:17])}）")
    return CodeCheck(True)


def check_catalog_code(code: str) -> CodeCheck:
    """基本编码: 12 characters, digits and capital letters (segments are treated as opaque)."""
    if not isinstance(code, str) or not CATALOG_CODE_RE.match(code):
        return CodeCheck(False, "基本编码应为 12 位数字或大写字母")
    return CodeCheck(True)


def make_task_code(uscc: str, level: str, catalog_code: str) -> str:
    """实施编码 = 实施主体统一社会信用代码 (18) + 行使层级代码 (1) + 基本编码 (12) = 31 characters."""
    if len(uscc) != 18 or level not in "123456" or len(level) != 1 or len(catalog_code) != 12:
        raise ValueError("task code parts have the wrong length")
    return f"{uscc}{level}{catalog_code}"


def division_level(code12: str) -> str:
    """Level of a 12-digit 统计用区划代码, from which trailing blocks are zero (standards §5)."""
    if len(code12) != 12 or not code12.isascii() or not code12.isdigit():
        raise ValueError(f"not a 12-digit division code: {code12!r}")
    if code12[2:] == "0" * 10:
        return "province"
    if code12[4:] == "0" * 8:
        return "city"
    if code12[6:] == "0" * 6:
        return "county"
    if code12[9:] == "000":
        return "town"
    return "village"
