"""The core (`bot/core/`) never imports discord.py, the cogs or the Discord layer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "bot" / "core"
FORBIDDEN = ("discord", "cogs", "bot.discord_ui", "bot.app")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_module_under_bot_core_imports_discord_or_the_discord_layer():
    offenders = {
        f"{path.relative_to(CORE.parent.parent)}: {name}"
        for path in CORE.rglob("*.py")
        for name in imported_modules(path)
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN)
    }
    assert sorted(offenders) == []


def test_importing_the_whole_core_loads_no_discord_module():
    modules = sorted(
        ".".join(path.relative_to(CORE.parent.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in CORE.rglob("*.py")
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'discord' or m.startswith(('discord.', 'cogs'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_sql_lives_in_storage_not_in_the_core():
    """The core may hold a connection (to join a transaction) but builds no statement itself."""
    allowed = {"sqlalchemy.ext.asyncio"}  # AsyncConnection, as a type
    offenders = {
        f"{path.relative_to(CORE.parent.parent)}: {name}"
        for path in CORE.rglob("*.py")
        for name in imported_modules(path)
        if ((name == "sqlalchemy" or name.startswith("sqlalchemy.")) and name not in allowed)
        or name == "bot.storage.tables"
    }
    assert sorted(offenders) == []
