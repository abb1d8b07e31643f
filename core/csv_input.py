"""Reading the CSV files an operator gives the platform (imports, the alias table, the holiday notices
file): one place for what every such reader must get right.

- The text must be UTF-8. A file saved as GBK (what Excel writes on a Chinese Windows) is refused
  naming the file and the first line that is not UTF-8, instead of a UnicodeDecodeError traceback.
- Records are numbered by the file's own lines: the line a record starts on (a quoted field may run
  over several lines), comment lines counted, so a message points where an editor does.
- A record that cannot be read comes with the reason in Chinese instead of its values: a field over
  the csv module's length limit (``csv.field_size_limit``, 128 KB, kept: it bounds the memory one
  bad line takes), or a quote never closed (the csv module reads the rest of the file into that field
  without complaint).
- A header naming a column twice is refused: csv.DictReader and ``dict(zip(...))`` silently keep the
  last one.
- A value holding a control character (NUL and the like, core.text_rules) is refused naming its line
  and column (``control_problem``): PostgreSQL refuses NUL in text (the import failed with a
  traceback), SQLite stored it, and the XLSX exports cannot hold such characters.
- Dates are YYYY-MM-DD only: Python 3.11's ``date.fromisoformat`` also reads 20260302 and
  2026-W10-1, which the messages, the forms and the national tables do not allow.

Errors are ``core.errors.Invalid``, which every command line already turns into its message.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import NamedTuple

from core.errors import Invalid
from core.text_rules import FIELD_MESSAGE, IN_TEXT

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_iso_date(text: str) -> date:
    """The date ``text`` names when written YYYY-MM-DD; ValueError for anything else."""
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"not a YYYY-MM-DD date: {text!r}")
    return date.fromisoformat(text)


def _not_utf8(name: str, line: int) -> str:
    return f"{name}：文件不是 UTF-8 编码（第 {line} 行起无法按 UTF-8 读取；如为 GBK 编码，请另存为 UTF-8）"


# One line and its end (CR LF, CR or LF), as Python's universal newlines split a file.
_LINES = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def utf8_lines(path: Path, name: str | None = None) -> Iterator[str]:
    """The lines of ``path`` (line ends kept, a leading byte order mark dropped), split at CR LF, CR
    or LF as ``open(newline="")`` would, so a file with old Mac line ends (Excel's "CSV (Macintosh)")
    still reads.

    Decoded line by line, so that text which is not UTF-8 is refused naming its line: Invalid, naming
    the file as ``name`` (by default its file name). Neither byte of a line end occurs inside a
    multi-byte UTF-8 (or GBK) character, so splitting the bytes first is safe."""
    name = name or path.name
    number = 0
    with path.open("rb") as fh:
        for raw in fh:  # split at LF
            lone_cr = raw.count(b"\r") > (1 if raw.endswith(b"\r\n") else 0)
            for piece in _LINES.findall(raw) if lone_cr else (raw,):
                number += 1
                try:
                    text = piece.decode("utf-8")
                except UnicodeDecodeError:
                    raise Invalid(_not_utf8(name, number), {"file": [name]}) from None
                yield text.removeprefix("\ufeff") if number == 1 else text


def check_utf8(path: Path) -> int:
    """Read all of ``path`` once and return its number of lines; Invalid as ``utf8_lines`` if it is not
    UTF-8. For readers that write as they go, so that nothing is written from a file that fails later."""
    return sum(1 for _line in utf8_lines(path))


class Record(NamedTuple):
    """One CSV record: the file's line it starts on, and its values or why it cannot be read."""

    line: int
    values: list[str]
    problem: str | None = None


class _Feed:
    """The lines handed to csv.reader, counting the file's lines and the line the current record
    started on; comment lines between records are not handed on."""

    def __init__(self, lines: Iterable[str], comments: bool) -> None:
        self._lines = iter(lines)
        self._comments = comments
        self.number = 0  # lines read so far
        self.start = 0  # the line the record being read starts on; 0 between records
        self.ended = False  # the csv module asked for a line after the last one

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        for text in self._lines:
            self.number += 1
            if not self.start:
                if self._comments and text.startswith("#"):
                    continue
                self.start = self.number
            return text
        self.ended = True
        raise StopIteration


def records(lines: Iterable[str], *, comments: bool = False) -> Iterator[Record]:
    """The CSV records of ``lines`` (the header first), each with the line it starts on.

    Blank lines are skipped, and with ``comments`` lines starting with "#" between records. A record
    that cannot be read is given with its ``problem`` (and no values) and reading goes on after it.
    A decoding error of ``lines`` propagates (``utf8_lines`` makes it an Invalid naming the line)."""
    feed = _Feed(lines, comments)
    reader = csv.reader(feed)
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Record(feed.start or feed.number, [], _problem(exc))
        else:
            # The csv module only asks for a line past the end while it is inside a quoted field: it then
            # returns what it read, the rest of the file as one field, as if that were a record.
            if feed.ended:
                unclosed = f"引号未闭合：第 {feed.start} 行开始的带引号字段到文件末尾也没有结束"
                yield Record(feed.start, [], unclosed)
            elif values and (len(values) > 1 or values[0].strip()):
                yield Record(feed.start, values)
        feed.start = 0


def _problem(exc: csv.Error) -> str:
    if str(exc).startswith("field larger than field limit"):
        limit = csv.field_size_limit()
        return f"有字段超过 {limit} 个字符（{limit // 1024} KB）的长度上限"
    return f"CSV 格式错误（{exc}）"


def read_header(rows: Iterator[Record], name: str) -> tuple[int, list[str]]:
    """The header from ``records(...)`` (its line, its column names stripped); Invalid naming the file
    when it is empty or the header cannot be read."""
    first = next(rows, None)
    if first is None:
        raise Invalid(f"{name}：文件为空", {"file": [name]})
    if first.problem:
        raise Invalid(f"{name} 第 {first.line} 行（表头）：{first.problem}", {"file": [name]})
    return first.line, [column.strip() for column in first.values]


def control_problem(header: Sequence[str], values: Sequence[str]) -> str | None:
    """Why a record's values cannot be stored as text (a control character, core.text_rules), naming the
    columns (by ``header``, else by number); None when every value may be stored."""
    if not IN_TEXT.search("".join(values)):  # one search a record: large case files go through here
        return None
    bad = [
        header[i] if i < len(header) and header[i] else f"第 {i + 1} 列"
        for i, value in enumerate(values)
        if IN_TEXT.search(value)
    ]
    return f"{'、'.join(bad)}：{FIELD_MESSAGE}" if bad else None


def header_problems(
    header: Sequence[str], required: Iterable[str], known: Iterable[str] | None = None
) -> list[str]:
    """What is wrong with a header: a column named twice, a required column missing, and (given
    ``known``) a column that is not one of them; empty if nothing is."""
    problems = []
    seen: set[str] = set()
    twice: list[str] = []
    for column in header:
        if column in seen and column and column not in twice:
            twice.append(column)
        seen.add(column)
    missing = [c for c in required if c not in seen]
    if missing:
        problems.append(f"缺少列：{', '.join(missing)}")
    if known is not None:
        allowed = set(known)
        extra = list(dict.fromkeys(c for c in header if c not in allowed))
        if extra:
            problems.append(f"不认识的列：{', '.join(extra)}")
    if twice:
        problems.append(f"列 {', '.join(twice)} 出现了不止一次（每列只能有一个）")
    return problems


def text_records(text: str) -> Iterator[Record]:
    """``records`` of a CSV already read into a string (an upload, ``Path.read_text``): a leading byte
    order mark dropped, lines split at CR LF, CR or LF."""
    return records(io.StringIO(text.removeprefix("\ufeff"), newline=""))


def table_rows(rows: Iterator[Record], header: Sequence[str], name: str) -> list[tuple[int, dict[str, str]]]:
    """The records after the header as (line, values by column); missing trailing values read as "".

    Invalid naming every line that cannot be taken (unreadable, more values than the header has
    columns, a control character) and the file ``name``: all or nothing."""
    taken: list[tuple[int, dict[str, str]]] = []
    errors: dict[str, list[str]] = {}
    for line, values, problem in rows:
        if problem is None and len(values) > len(header):
            problem = f"列数多于表头（{len(values)} 列，表头 {len(header)} 列）"
        problem = problem or control_problem(header, values)
        if problem:
            errors[f"第{line}行"] = [problem]
        else:
            padded = [*values, *[""] * (len(header) - len(values))]
            taken.append((line, dict(zip(header, padded, strict=True))))
    if errors:
        raise Invalid(f"{name}有 {len(errors)} 行无法读取，未导入任何数据", errors)
    return taken
