"""A holiday notices file that cannot be read (saved as GBK, a date not written YYYY-MM-DD) stops the
process with its file and line, at start-up and in `flask cases calendar`, never with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import workdays

ROOT = Path(__file__).resolve().parents[2]
NOTICE = "date,kind,name,notice\n2027-01-01,holiday,元旦,国务院办公厅通知\n"


def test_a_gbk_notices_file_is_refused_naming_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "notices.csv"
    path.write_bytes(NOTICE.encode("gbk"))
    with pytest.raises(workdays.CalendarFileError) as caught:
        workdays.read_notices(path)
    assert str(caught.value) == (
        f"{path}：文件不是 UTF-8 编码（第 2 行起无法按 UTF-8 读取；如为 GBK 编码，请另存为 UTF-8）"
    )


def test_a_date_not_written_yyyy_mm_dd_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notices.csv"
    path.write_text("date,kind,name,notice\n20270101,holiday,元旦,通知\n", encoding="utf-8")
    with pytest.raises(workdays.CalendarFileError, match="第 2 行：日期应为 YYYY-MM-DD"):
        workdays.read_notices(path)


def test_flask_cases_calendar_with_a_gbk_file_says_so_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "notices.csv"
    path.write_bytes(NOTICE.encode("gbk"))
    env = {
        **os.environ,
        "INSTANCE_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'calendar.db'}",
        "SECRET_KEY": "calendar-test",
        "CITY_REGISTRY_KEY": "calendar-test-registry-key-0123456789",
        workdays.CALENDAR_FILE_ENV: str(path),
    }
    env.pop("FLASK_APP", None)
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi:app", "cases", "calendar"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"settings error: {path}：文件不是 UTF-8 编码（第 2 行起" in result.stderr
