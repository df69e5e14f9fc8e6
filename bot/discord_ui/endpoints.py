"""Point discord.py at a REST proxy / gateway override (or a local fake) from the settings."""

from __future__ import annotations

import discord.gateway
import discord.http
import yarl

from bot.config import Settings


def apply_discord_endpoints(settings: Settings) -> None:
    """Set discord.py's REST base and gateway URL; both are read when each request starts."""
    discord.http.Route.BASE = settings.discord_api_base_url
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
