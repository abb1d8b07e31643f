"""The typed accessors for table models: a row's primary key and a model's Core table."""

import pytest
import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from catalog.models import Department
from core.db import id_of, table_of
from licenses.models import Licence


def _department(**kwargs: object) -> Department:
    return Department(name="高港区行政审批局", uscc="11321203MB1A12345X", level="4",
                      division_code="321203000000", **kwargs)


def test_id_of_returns_the_primary_key_of_a_row_that_has_one():
    assert id_of(_department(id=42)) == 42


def test_id_of_refuses_a_row_that_was_never_flushed():
    with pytest.raises(RuntimeError, match="Department has no primary key yet"):
        id_of(_department())


def test_table_of_is_the_models_core_table():
    table = table_of(Licence)
    assert isinstance(table, sa.Table)
    assert table is Licence.__table__
    assert "is_current" in table.c


def test_table_of_refuses_a_model_without_a_table():
    class NotATable(SQLModel):
        id: int | None = Field(default=None)

    with pytest.raises(sa.exc.NoInspectionAvailable):
        table_of(NotATable)
