"""A start that finds the schema at the newest revision does not load alembic (about 11 MiB of
every process); `SCHEMA_HEAD` names that revision."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from bot.storage.database import SCHEMA_HEAD, migration_config


def test_schema_head_is_the_newest_migration() -> None:
    assert ScriptDirectory.from_config(migration_config()).get_heads() == [SCHEMA_HEAD]


MIGRATE_AND_REPORT = """
import asyncio, sys
import bot.__main__, bot.app  # what `python -m bot` loads before it runs
from bot.storage.database import Database

async def main(url):
    database = Database(url)
    await database.migrate()
    revisions = await database.schema_revisions()
    await database.close()
    print(revisions, any(name == "alembic" or name.startswith("alembic.") for name in sys.modules))

asyncio.run(main(sys.argv[1]))
"""


def migrate_in_a_new_process(url: str) -> str:
    return subprocess.run([sys.executable, "-c", MIGRATE_AND_REPORT, url], capture_output=True, text=True,
                          check=True, timeout=120).stdout.strip()


def test_alembic_runs_only_when_there_is_something_to_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    assert migrate_in_a_new_process(url) == f"['{SCHEMA_HEAD}'] True"  # a new database: migrated
    assert migrate_in_a_new_process(url) == f"['{SCHEMA_HEAD}'] False"  # at head: alembic not loaded
