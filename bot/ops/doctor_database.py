"""doctor's database check: reachable, and at the newest schema revision (read-only)."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import make_url

from bot.config import Settings
from bot.ops.checks import CheckResult, fail, ok, warn
from bot.storage.migration_status import schema_status, sqlite_path

TIMEOUT = 15.0
APPLIED_AT_START = "the bot applies migrations when it starts (python -m bot); run doctor again after that"


def where(database_url: str) -> str:
    """The database's address without its password."""
    path = sqlite_path(database_url)
    if path is not None:
        return str(path)
    url = make_url(database_url)
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


async def database_check(settings: Settings) -> CheckResult:
    place = where(settings.database_url)
    try:
        async with asyncio.timeout(TIMEOUT):
            status = await schema_status(settings.database_url)
    except Exception as error:  # any driver error means the same to the operator: not reachable
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return fail("database", f"cannot reach the database at {place} (DATABASE_URL): {reason}",
                    "check that the server runs and DATABASE_URL points at it")
    if not status.exists:
        return warn("database", f"no database at {place} yet", "the bot creates and migrates it when it starts",
                    pending=list(status.pending))
    if status.unknown:
        return fail("database", f"the database at {place} is at revision {', '.join(status.unknown)}, which this "
                    "version of the bot does not know", "a newer version migrated it: run that version",
                    current=list(status.current))
    if status.pending:
        return fail("database", f"the database at {place} has pending migrations: {', '.join(status.pending)}",
                    APPLIED_AT_START, current=list(status.current), pending=list(status.pending))
    return ok("database", f"the database at {place} is reachable and migrated (revision "
              f"{', '.join(status.current)})", current=list(status.current))
