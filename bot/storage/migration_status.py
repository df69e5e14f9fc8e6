"""Which schema revisions a database has and which are still to apply (for `doctor`).

Read-only: it never creates a SQLite file or applies a migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.storage.database import async_url, migration_config


@dataclass(frozen=True)
class SchemaStatus:
    exists: bool  # False: a SQLite file not created yet (the bot creates it at its first start)
    current: tuple[str, ...]  # the revisions the database is at
    pending: tuple[str, ...]  # revisions to apply, oldest first
    unknown: tuple[str, ...]  # revisions the database has that this version of the bot does not know

    @property
    def up_to_date(self) -> bool:
        return self.exists and not self.pending and not self.unknown


def sqlite_path(database_url: str) -> Path | None:
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database)).expanduser()


async def schema_status(database_url: str) -> SchemaStatus:
    """Raises whatever the driver raises when the database cannot be reached."""
    from alembic.script import ScriptDirectory  # only when asked: a running bot never loads alembic

    script = ScriptDirectory.from_config(migration_config())
    every = [revision.revision for revision in reversed(list(script.walk_revisions()))]
    path = sqlite_path(database_url)
    if path is not None and not path.exists():
        return SchemaStatus(False, (), tuple(every), ())
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(_current_heads)
    finally:
        await engine.dispose()
    known = set(every)
    unknown = tuple(revision for revision in current if revision not in known)
    if unknown:
        return SchemaStatus(True, current, (), unknown)
    applied: set[str] = set()
    for head in current:
        applied.update(revision.revision for revision in script.iterate_revisions(head, "base"))
    return SchemaStatus(True, current, tuple(r for r in every if r not in applied), ())


def _current_heads(connection: Connection) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    return tuple(MigrationContext.configure(connection).get_current_heads())
