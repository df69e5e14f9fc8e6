"""One gateway connection of the fake: an ordered outbox, optional zlib-stream, READY payloads.

discord.py accepts plain TEXT frames even when it asked for zlib-stream; with
`compress=True` the session sends binary frames from one zlib stream per connection, the
way Discord does (gateway.mdx "zlib-stream").

Sharding (gateway.mdx "Sharding"): an IDENTIFY with `"shard": [id, count]` makes the session
one shard; it then hears only of guilds with `(guild_id >> 22) % count == id`, and of DMs
when it is shard 0. A session that names no shard is the single shard of a small bot and
hears of everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import zlib
from collections.abc import Callable

from aiohttp import web

from tests.fakes.discord_state import (
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGES,
    INTENT_MESSAGE_CONTENT,
    JSON,
    DiscordState,
    StoredMessage,
)

HEARTBEAT_INTERVAL_MS = 41_250
_session_numbers = itertools.count(1)


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that owns a guild (gateway.mdx "Sharding Formula")."""
    return (guild_id >> 22) % shard_count


class GatewaySession:
    """A bot's websocket connection; `send` only enqueues, so callers never await the socket."""

    def __init__(self, ws: web.WebSocketResponse, *, compress: bool) -> None:
        self.ws = ws
        self.id = f"fake-session-{next(_session_numbers)}"
        self.intents: int | None = None
        self.identify: JSON | None = None
        self.seq = 0
        self.closed = False
        self.shard: tuple[int, int] | None = None  # (shard_id, shard_count) from IDENTIFY
        self.dispatched: list[tuple[str, JSON]] = []  # every event sent, oldest first
        self._outbox: asyncio.Queue[tuple[JSON, Callable[[float], None] | None]] = asyncio.Queue()
        self._zlib = zlib.compressobj() if compress else None
        self._writer = asyncio.create_task(self._write())

    @property
    def compressed(self) -> bool:
        return self._zlib is not None

    @property
    def identified(self) -> bool:
        return self.intents is not None and not self.closed

    def send(self, payload: JSON, *, on_sent: Callable[[float], None] | None = None) -> None:
        """Queue `payload`; `on_sent` gets the monotonic time its frame was handed to the socket."""
        if not self.closed:
            self._outbox.put_nowait((payload, on_sent))

    def dispatch(self, event: str, data: JSON, *, on_sent: Callable[[float], None] | None = None) -> None:
        self.seq += 1
        self.dispatched.append((event, data))
        self.send({"op": 0, "t": event, "s": self.seq, "d": data}, on_sent=on_sent)

    @property
    def shard_id(self) -> int:
        return self.shard[0] if self.shard is not None else 0

    def owns(self, guild_id: int | None) -> bool:
        """Whether this session's shard receives the events of `guild_id` (None: DMs, shard 0)."""
        if self.shard is None:
            return True
        shard_id, shard_count = self.shard
        if guild_id is None:
            return shard_id == 0
        return shard_of(guild_id, shard_count) == shard_id

    def has_intent(self, bit: int) -> bool:
        return bool((self.intents or 0) & bit)

    async def _write(self) -> None:
        while True:
            payload, on_sent = await self._outbox.get()
            text = json.dumps(payload)
            try:
                if self._zlib is not None:
                    data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                self.closed = True
                return
            if on_sent is not None:
                on_sent(time.monotonic())

    async def close(self, code: int = 1000, message: str = "") -> None:
        """Idempotent: stop the writer and close the socket (if still open)."""
        self.closed = True
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        await self.ws.close(code=code, message=message.encode())


def ready_events(state: DiscordState, session: GatewaySession, host: str) -> list[tuple[str, JSON]]:
    """READY (guilds listed as unavailable) and one GUILD_CREATE per guild, as Discord sends them.

    A shard's session hears only of the guilds on its shard.
    """
    guilds = [g for g in state.guilds.values() if session.owns(g.id)]
    ready: JSON = {
        "v": 10, "user": {**state.bot_user.payload(), "verified": True, "mfa_enabled": False},
        "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
        "session_id": session.id, "session_type": "normal", "resume_gateway_url": f"ws://{host}/gw",
        "application": {"id": str(state.app_id), "flags": 0}, "private_channels": [], "relationships": [],
    }
    if session.shard is not None:
        ready["shard"] = list(session.shard)
    events: list[tuple[str, JSON]] = [("READY", ready)]
    for guild in guilds:
        # Without the GUILD_MEMBERS intent Discord only includes the bot's own member.
        members = [m for m in guild.members.values()
                   if session.has_intent(INTENT_GUILD_MEMBERS) or m.user is state.bot_user]
        events.append(("GUILD_CREATE", guild.payload(members=members)))
    return events


def visible_without_intent(state: DiscordState, message: StoredMessage) -> bool:
    """Message Content intent exceptions: own messages, DMs, messages mentioning the bot."""
    channel = state.channels.get(message.channel_id)
    return (message.author is state.bot_user or (channel is not None and channel.is_dm)
            or state.bot_user in message.mentions)


def message_event(state: DiscordState, session: GatewaySession, message: StoredMessage) -> JSON | None:
    """The MESSAGE_CREATE/UPDATE body this session may see, or None if its intents exclude it."""
    channel = state.channels.get(message.channel_id)
    is_dm = channel is not None and channel.is_dm
    if not session.owns(message.guild_id):
        return None
    if message.ephemeral or not session.has_intent(INTENT_DIRECT_MESSAGES if is_dm else INTENT_GUILD_MESSAGES):
        return None

    def blank(m: StoredMessage) -> bool:
        return not session.has_intent(INTENT_MESSAGE_CONTENT) and not visible_without_intent(state, m)

    data = message.payload(blank_content=blank(message))
    referenced = state.all_messages.get(message.reply_to_id or 0)
    if referenced is not None:
        data["referenced_message"] = None if referenced.deleted else referenced.payload(
            blank_content=blank(referenced))
    guild = state.guilds.get(message.guild_id or 0)
    if guild is not None and message.author.id in guild.members:
        data["member"] = guild.members[message.author.id].payload(with_user=False)
    return data
