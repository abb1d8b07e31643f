"""The annual report as a document: A4 pages with GB/T 9704 margins, a serif CJK face, page numbers,
tables inside the margins; and, where LibreOffice is installed, the DOCX really prints that way.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from docx.oxml.ns import qn
from docx.shared import Mm
from sqlmodel import Session

from core.auth import SYSTEM
from reports import annual_report, services, snapshot
from tests.factories.reports import YEAR, backdate, build_world


@pytest.fixture
def report(session: Session) -> annual_report.Report:
    build_world(session)
    backdate(session, datetime(2025, 3, 1, tzinfo=UTC))
    services.save_template_table(
        session,
        SYSTEM,
        year=YEAR,
        table="4",
        values={
            f"{g}|{c}": 2
            for g in ("review", "direct", "after")
            for c in ("upheld", "corrected", "other", "pending")
        },
    )
    snapshot.create_snapshot(session, SYSTEM, YEAR)
    return annual_report.build_report(session, YEAR)


def test_docx_is_a4_with_serif_cjk_fonts_page_numbers_and_tables_within_the_margins(
    report: annual_report.Report,
) -> None:
    from docx import Document

    doc = Document(io.BytesIO(annual_report.render_docx(report)))
    section = doc.sections[0]

    def mm(length: Any) -> float:
        return round(length.mm, 1)  # stored in twips, so compare to a tenth of a millimetre

    assert (mm(section.page_width), mm(section.page_height)) == (210, 297)
    assert (mm(section.left_margin), mm(section.right_margin)) == (28, 26)
    assert (mm(section.top_margin), mm(section.bottom_margin)) == (37, 35)
    for name in ("Normal", "Title", "Heading 1"):
        rfonts = doc.styles[name].element.rPr.rFonts
        assert rfonts.get(qn("w:eastAsia")) == "Noto Serif CJK SC", name
        assert rfonts.get(qn("w:asciiTheme")) is None, name  # a theme font would override the serif
        assert doc.styles[name].element.rPr.find(qn("w:lang")).get(qn("w:eastAsia")) == "zh-CN", name
    footer = section.footer._element.xml
    assert "<w:instrText" in footer
    assert " PAGE " in footer
    text_width = section.page_width - section.left_margin - section.right_margin
    assert doc.tables
    for table in doc.tables:
        grid = table._tbl.tblGrid.findall(qn("w:gridCol"))
        total = sum(int(col.get(qn("w:w"))) for col in grid)
        assert total <= Mm(210 - 28 - 26).twips + len(grid), "table wider than the text block"
    for shape in doc.inline_shapes:
        assert shape.width <= text_width


def test_html_report_prints_on_a4(report: annual_report.Report) -> None:
    html = annual_report.render_html(report)
    assert re.search(r"@page\s*\{\s*size:\s*A4", html)
    assert "Noto Serif CJK SC" in html


@pytest.mark.skipif(
    shutil.which("soffice") is None,
    reason="LibreOffice (soffice) is not installed: scripts/test-services.sh installs it",
)
def test_docx_converts_to_an_a4_pdf_with_the_serif_font(report: annual_report.Report, tmp_path: Path) -> None:
    source = tmp_path / "report.docx"
    source.write_bytes(annual_report.render_docx(report))
    profile = tmp_path / "lo-profile"
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    pdf = tmp_path / "report.pdf"
    assert pdf.exists()
    assert shutil.which("pdfinfo"), "poppler-utils (pdfinfo) is missing: scripts/test-services.sh installs it"
    info = _run(["pdfinfo", str(pdf)])
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]  # pdfinfo always prints Pages
    assert pages > 0
    assert "(A4)" in re.search(r"^Page size:.*$", info, re.M).group(0)  # type: ignore[union-attr]  # and Page size
    fonts = _run(["pdffonts", str(pdf)])
    assert "NotoSerifCJK" in fonts.replace(" ", "")


def _run(args: list[str]) -> Any:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout
