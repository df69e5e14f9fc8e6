"""The statements every job runs compile to fixed SQL: no part SQLAlchemy must rewrite at each
execution (an "expanding" IN list), which doubled such a statement's cost."""

from __future__ import annotations

import pytest
from sqlalchemy import Executable
from sqlalchemy.dialects import postgresql, sqlite

from bot.storage import jobs, quota_ledger, quota_snapshot


@pytest.mark.parametrize("statement", [jobs._DELIVERED, quota_ledger._MEMBER_TOTALS, quota_snapshot._SNAPSHOT,
                                       jobs._start(1), jobs._start(3)],
                         ids=["delivered", "member totals", "quota snapshot", "start one", "start three"])
@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgresql"])
def test_a_per_job_statement_needs_no_rewriting_at_execution(statement: Executable, dialect: object) -> None:
    compiled = str(statement.compile(dialect=dialect))  # type: ignore[attr-defined]
    assert "POSTCOMPILE" not in compiled
    assert "IN (" in compiled  # the fixed set is there, as parameters of its own
