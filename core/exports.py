"""Spreadsheet exports (CSV and XLSX) that a spreadsheet program opens without running anything.

Excel, WPS and LibreOffice treat a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and tab or
CR before one of those) as a formula: a licence number ``=HYPERLINK("http://evil.example/", ...)``
became a link in the exported file, and masking keeps the first character (``=****``). Every
export goes through this module, so every text cell is neutralised the same way:

- CSV: the cell is prefixed with an apostrophe (the OWASP recommendation; spreadsheets show it
  as text, and a reader of the raw file sees the original value after the apostrophe);
- XLSX: the cell is written as a string with Excel's own quote prefix (the same apostrophe Excel
  adds when a user types ``'=...``), so the cell shows the original text and never a formula.

Numbers stay numbers: only text cells are touched (``-5`` as an int is a value, ``"-5"`` as text
from a user field is not).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

# Full-width forms are included: some spreadsheet programs normalise them on input.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
UTF8_BOM = "\ufeff"  # Excel opens UTF-8 CSV correctly only with a BOM


def is_formula_like(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_TRIGGERS)


def safe_cell(value: Any) -> Any:
    """The value as a CSV cell that no spreadsheet evaluates; None is an empty cell."""
    if value is None:
        return ""
    if is_formula_like(value):
        return "'" + value
    return value


def csv_text(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    """Rows as CSV text with the BOM Excel needs, every cell through ``safe_cell``."""
    buf = io.StringIO()
    buf.write(UTF8_BOM)
    writer = csv.writer(buf)
    if header is not None:
        writer.writerow([safe_cell(v) for v in header])
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return buf.getvalue()


def xlsx_bytes(title: str, rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None) -> bytes:
    """Rows as a one-sheet XLSX workbook; formula-like text is stored as quoted text."""
    from openpyxl import Workbook  # only the exports need it; keep imports of core light
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    workbook = Workbook()
    sheet = workbook.create_sheet(index=0)
    workbook.remove(workbook.worksheets[1])  # the default empty sheet
    # Sheet titles: at most 31 characters, none of []:*?/\ (Excel refuses the file otherwise).
    sheet.title = "".join("-" if ch in "[]:*?/\\" else ch for ch in title)[:31] or "Sheet1"
    all_rows = [header, *rows] if header is not None else list(rows)
    for r, row in enumerate(all_rows, start=1):
        for c, value in enumerate(row, start=1):
            if isinstance(value, str):
                # XML 1.0 cannot hold most control characters: openpyxl raised IllegalCharacterError
                # (a 500 on the export) for a name that carried one. Each is shown as U+FFFD.
                value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
            cell = sheet.cell(row=r, column=c)
            if is_formula_like(value):
                cell.value = value
                cell.data_type = "s"
                cell.quotePrefix = True
            else:
                cell.value = value
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
