"""Column types and the clock shared by every package."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware timestamps on both SQLite (which drops the zone) and PostgreSQL.

    Naive datetimes are refused on the way in: licence validity depends on the zone.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# China Standard Time: licence validity days, report periods and every time a user reads.
CHINA_TZ = ZoneInfo("Asia/Shanghai")


def china_now() -> datetime:
    return utcnow().astimezone(CHINA_TZ)


def china_today() -> date:
    """Licence dates are calendar days in China Standard Time."""
    return china_now().date()
