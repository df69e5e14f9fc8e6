"""Sync the slash-command tree only when its payload changed (SYNC_COMMANDS=auto).

Discord rate-limits command writes, and every global write touches every server; so the
hash of the payload last synced is stored per scope and a restart with an unchanged tree
sends nothing that writes commands.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import discord
from discord import app_commands

from bot.storage.command_sync import CommandSyncStore

log = logging.getLogger(__name__)


def scope_name(guild: discord.abc.Snowflake | None) -> str:
    return "global" if guild is None else f"guild:{guild.id}"


async def payload_hash(tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None) -> str:
    """A stable hash of exactly what `tree.sync(guild=…)` would send, localizations included
    (a changed translation is a changed payload)."""
    commands = tree._get_all_commands(guild=guild)
    translator = tree.translator
    if translator:
        payload = [await command.get_translated_payload(tree, translator) for command in commands]
    else:
        payload = [command.to_dict(tree) for command in commands]
    # The application is part of it: the same database under another bot token must sync again.
    synced = {"application": tree.client.application_id,
              "commands": sorted(payload, key=lambda c: (c.get("type", 1), c["name"]))}
    canonical = json.dumps(synced, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def sync_commands(tree: app_commands.CommandTree[Any], store: CommandSyncStore, *,
                        guild: discord.abc.Snowflake | None = None, force: bool = False) -> bool:
    """Sync `guild`'s commands (global when None) if forced or changed; True when it wrote."""
    if guild is not None:  # development: the global commands, to one server, at once
        tree.copy_global_to(guild=guild)
    scope = scope_name(guild)
    digest = await payload_hash(tree, guild)
    if not force and await store.synced_hash(scope) == digest:
        log.debug("commands (%s) unchanged since the last sync; not syncing", scope)
        return False
    synced = await tree.sync(guild=guild)
    await store.remember(scope, digest)
    log.info("synced %d commands (%s)", len(synced), scope)
    return True
