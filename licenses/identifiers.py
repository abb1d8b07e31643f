"""电子证照标识 (GB/T 36904-2018) with its ISO/IEC 7064 MOD 37,36 check character (standards §3.1).

``1.2.156.3005.2.<证照类型代码>.<颁发机构代码>.<流水号>.<版本号>.<校验位>``. Pure functions, no I/O.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from stdnum.iso7064 import mod_37_36

from catalog.codes import USCC_CHARS

ROOT_OID = "1.2.156.3005.2"
ALNUM36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
TYPE_CODE_RE = re.compile(rf"^[{USCC_CHARS}]{{18}}\d{{3}}$")
SERIAL_RE = re.compile(r"^[0-9A-Z]{1,40}$")
MAX_VERSION = 999


class IdentifierError(ValueError):
    """The text is not a well-formed 电子证照标识; the message says which part is wrong (in Chinese)."""


def mod37_36(text: str) -> str:
    """ISO/IEC 7064 MOD 37,36 (hybrid) check character over 0-9A-Z (python-stdnum's implementation)."""
    bad = next((ch for ch in text if ch not in ALNUM36), None)
    if bad is not None:
        raise IdentifierError(f"含非法字符 {bad!r}（只允许数字和大写字母）")
    return str(mod_37_36.calc_check_digit(text, alphabet=ALNUM36))


@dataclass(frozen=True)
class LicenceIdentifier:
    type_code: str
    issuer_code: str
    serial: str
    version: int

    @property
    def check(self) -> str:
        return mod37_36(self.body)

    @property
    def body(self) -> str:
        return f"{self.type_code}{self.issuer_code}{self.serial}{self.version:03d}"

    def __str__(self) -> str:
        return ".".join(
            [ROOT_OID, self.type_code, self.issuer_code, self.serial, f"{self.version:03d}", self.check]
        )

    def next_version(self) -> LicenceIdentifier:
        if self.version >= MAX_VERSION:
            raise IdentifierError("版本号已达上限 999")
        return LicenceIdentifier(self.type_code, self.issuer_code, self.serial, self.version + 1)


def make_identifier(type_code: str, issuer_code: str, serial: str, version: int = 1) -> str:
    """Build an identifier; raises IdentifierError when a part has the wrong shape."""
    _check_parts(type_code, issuer_code, serial, version)
    return str(LicenceIdentifier(type_code, issuer_code, serial, version))


def _check_parts(type_code: str, issuer_code: str, serial: str, version: int) -> None:
    if not TYPE_CODE_RE.match(type_code or ""):
        raise IdentifierError("证照类型代码应为 18 位统一社会信用代码加 3 位数字")
    if len(issuer_code or "") != 18 or any(c not in USCC_CHARS for c in issuer_code):
        raise IdentifierError("颁发机构代码应为 18 位统一社会信用代码")
    if not SERIAL_RE.match(serial or ""):
        raise IdentifierError("流水号应为 1-40 位数字或大写字母")
    if not 1 <= version <= MAX_VERSION:
        raise IdentifierError("版本号应在 001-999 之间")


def parse_identifier(text: str) -> LicenceIdentifier:
    """Parse and validate an identifier, check character included."""
    if not isinstance(text, str) or not text.startswith(ROOT_OID + "."):
        raise IdentifierError(f"电子证照标识应以 {ROOT_OID} 开头")
    parts = text[len(ROOT_OID) + 1 :].split(".")
    if len(parts) != 5:
        raise IdentifierError(
            "电子证照标识应由根 OID 与 5 段（类型代码.颁发机构代码.流水号.版本号.校验位）组成"
        )
    type_code, issuer_code, serial, version_text, check = parts
    if not (len(version_text) == 3 and version_text.isdigit()):
        raise IdentifierError("版本号应为 3 位数字")
    version = int(version_text)
    _check_parts(type_code, issuer_code, serial, version)
    ident = LicenceIdentifier(type_code, issuer_code, serial, version)
    if len(check) != 1 or check != ident.check:
        raise IdentifierError(f"校验位错误（应为 {ident.check}）")
    return ident


def is_valid_identifier(text: str) -> bool:
    try:
        parse_identifier(text)
    except IdentifierError:
        return False
    return True


def new_serial(year: int) -> str:
    """A fresh 流水号: the issue year plus 10 random base-36 characters (no coordination needed)."""
    return f"{year:04d}" + "".join(secrets.choice(ALNUM36) for _ in range(10))
