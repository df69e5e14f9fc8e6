"""doctor's Discord checks, over REST only (never the gateway, never a command sync):
the token, the privileged intents the settings ask for, the invite URL, and per server the
permissions the bot needs in each text channel it can see."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp
import discord
from discord.http import HTTPClient, Route

from bot.config import Settings
from bot.discord_ui.endpoints import apply_discord_endpoints
from bot.ops.checks import CheckResult, fail, ok, skip, warn
from bot.ops.permissions import (
    NEEDED,
    TEXT_CHANNEL_TYPES,
    base_permissions,
    channel_permissions,
    invite_url,
    missing,
    permission_names,
)

T = TypeVar("T")
REQUEST_TIMEOUT = 20.0
# Application flags (developers/resources/application): the portal's Message Content switch.
MESSAGE_CONTENT_FLAGS = (1 << 18) | (1 << 19)  # GATEWAY_MESSAGE_CONTENT, GATEWAY_MESSAGE_CONTENT_LIMITED
DEPENDANTS = ("discord.intents", "discord.invite", "discord.permissions")
PORTAL = "https://discord.com/developers/applications"


class Unreachable(Exception):
    """Discord could not be reached; the message names the address and the setting."""


async def discord_checks(settings: Settings) -> list[CheckResult]:
    apply_discord_endpoints(settings)
    http = HTTPClient(asyncio.get_running_loop())
    try:
        return await _checks(http, settings)
    finally:
        await http.close()


def skipped(because: str) -> list[CheckResult]:
    return [skip("discord.token", because), *(skip(name, because) for name in DEPENDANTS)]


async def _call(settings: Settings, request: Awaitable[T]) -> T:
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            return await request
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        reason = str(error) or f"no answer within {REQUEST_TIMEOUT:.0f} s"
        raise Unreachable(f"cannot reach Discord at {settings.discord_api_base_url} "
                          f"(DISCORD_API_BASE_URL): {reason}") from None


async def _checks(http: HTTPClient, settings: Settings) -> list[CheckResult]:
    try:
        me = await _call(settings, http.static_login(settings.discord_token.get_secret_value()))
    except discord.LoginFailure:
        return [fail("discord.token", "Discord rejected DISCORD_TOKEN",
                     f"copy a fresh token from {PORTAL} → your application → Bot → Reset Token"),
                *(skip(name, "the token was rejected") for name in DEPENDANTS)]
    except Unreachable as error:
        return [fail("discord.token", str(error), "check the address, a proxy or the network"),
                *(skip(name, "Discord could not be reached") for name in DEPENDANTS)]
    except discord.HTTPException as error:
        return [fail("discord.token", f"Discord answered HTTP {error.status} to GET /users/@me",
                     "try again later; check discordstatus.com"),
                *(skip(name, "the token could not be checked") for name in DEPENDANTS)]
    results = [ok("discord.token", f"DISCORD_TOKEN is valid: the bot is {me['username']} (id {me['id']})")]
    results += await _application_checks(http, settings)
    results += await _server_checks(http, settings, int(me["id"]))
    return results


async def _application_checks(http: HTTPClient, settings: Settings) -> list[CheckResult]:
    try:
        application: dict[str, Any] = await _call(settings, http.request(Route("GET", "/applications/@me")))
    except (Unreachable, discord.HTTPException) as error:
        reason = str(error) if isinstance(error, Unreachable) else f"HTTP {error.status}"
        return [fail("discord.intents", f"could not read the application (GET /applications/@me): {reason}"),
                skip("discord.invite", "the application could not be read")]
    flags = int(application.get("flags") or 0)
    if not settings.message_content_intent:
        intents = ok("discord.intents", "privileged intents: none asked for (MESSAGE_CONTENT_INTENT=false)")
    elif flags & MESSAGE_CONTENT_FLAGS:
        intents = ok("discord.intents", "privileged intents: Message Content is enabled for the application")
    else:
        intents = fail("discord.intents",
                       "MESSAGE_CONTENT_INTENT=true, but the application's Message Content intent is off",
                       f"{PORTAL} → your application → Bot → Privileged Gateway Intents → Message Content "
                       "Intent → Save (or set MESSAGE_CONTENT_INTENT=false)")
    url = invite_url(int(application["id"]))
    invite = ok("discord.invite", f"invite URL: {url}", url=url, permissions=NEEDED.value)
    return [intents, invite]


async def _guilds(http: HTTPClient, settings: Settings) -> list[dict[str, Any]]:
    guilds: list[dict[str, Any]] = []
    while True:
        page: list[Any] = await _call(settings, http.get_guilds(200, after=guilds[-1]["id"] if guilds else None,
                                                     with_counts=False))
        guilds += page
        if len(page) < 200:
            return guilds


async def _server_checks(http: HTTPClient, settings: Settings, bot_id: int) -> list[CheckResult]:
    try:
        guilds = await _guilds(http, settings)
    except (Unreachable, discord.HTTPException) as error:
        reason = str(error) if isinstance(error, Unreachable) else f"HTTP {error.status}"
        return [fail("discord.permissions", f"could not list the bot's servers (GET /users/@me/guilds): {reason}")]
    if not guilds:
        return [warn("discord.permissions", "the bot is in no server yet", "invite it with the URL above")]
    return [await _server_check(http, settings, guild, bot_id) for guild in guilds]


async def _server_check(http: HTTPClient, settings: Settings, listed: dict[str, Any], bot_id: int
                        ) -> CheckResult:
    guild_id, name = int(listed["id"]), str(listed.get("name") or listed["id"])
    data = {"guild_id": str(guild_id), "guild": name}
    try:
        guild = await _call(settings, http.get_guild(guild_id, with_counts=False))
        channels = await _call(settings, http.get_all_guild_channels(guild_id))
        member = await _call(settings, http.get_member(guild_id, bot_id))
    except (Unreachable, discord.HTTPException) as error:
        reason = str(error) if isinstance(error, Unreachable) else f"HTTP {error.status}"
        return fail("discord.permissions", f'server "{name}": could not read its channels and roles: {reason}',
                    **data)
    base = base_permissions(guild, member, bot_id)
    hidden: list[str] = []
    gaps: list[dict[str, Any]] = []
    text_channels = sorted((c for c in channels if int(c["type"]) in TEXT_CHANNEL_TYPES),
                           key=lambda c: (int(c.get("position") or 0), int(c["id"])))
    for channel in text_channels:
        have = channel_permissions(base, channel, guild_id, member, bot_id)
        if not have.view_channel:
            hidden.append(f"#{channel.get('name')}")
        elif lacking := permission_names(missing(have)):
            gaps.append({"channel_id": str(channel["id"]), "channel": f"#{channel.get('name')}", "missing": lacking})
    visible = len(text_channels) - len(hidden)
    if not visible:
        return fail("discord.permissions", f'server "{name}": the bot can see no text channel',
                    "give the bot's role View Channel (Server Settings → Roles)", **data)
    if gaps:
        return fail("discord.permissions", f'server "{name}": permissions missing in {len(gaps)} of {visible} '
                    "text channel(s)", "grant them to the bot's role, or fix those channels' permission overwrites",
                    details=[f"{gap['channel']}: {', '.join(gap['missing'])}" for gap in gaps],
                    missing=gaps, **data)
    note = f"; {len(hidden)} hidden from the bot, not checked" if hidden else ""
    return ok("discord.permissions", f'server "{name}": every needed permission in {visible} text '
              f"channel(s){note}", **data)
