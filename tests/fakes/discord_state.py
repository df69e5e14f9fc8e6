"""The fake Discord's world: users, guilds, channels, roles, messages, interactions.

Everything here is plain data plus the payload shapes Discord sends (user, member, role,
channel, guild, message objects). The server in `fake_discord.py` mutates it; tests read it.
"""



from __future__ import annotations

import itertools
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

JSON = dict[str, Any]
T = TypeVar("T")

DISCORD_EPOCH_MS = 1_420_070_400_000
MiB = 2**20

# Permission bits (developers/topics/permissions.mdx).
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
ADD_REACTIONS = 1 << 6
MANAGE_GUILD = 1 << 5
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CHANGE_NICKNAME = 1 << 26
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 51) - 1

DEFAULT_EVERYONE_PERMISSIONS = (
    CREATE_INSTANT_INVITE | ADD_REACTIONS | VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES
    | READ_MESSAGE_HISTORY | MENTION_EVERYONE | USE_EXTERNAL_EMOJIS | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS | SEND_MESSAGES_IN_THREADS
)
BOT_ROLE_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15

# Gateway intents.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT
# Application flags that say a privileged intent is switched on in the portal (resources/application).
APP_FLAG_FOR_INTENT = {INTENT_GUILD_PRESENCES: 1 << 12, INTENT_GUILD_MEMBERS: 1 << 14, INTENT_MESSAGE_CONTENT: 1 << 18}

# Interaction types and callback types.
IX_PING, IX_COMMAND, IX_COMPONENT, IX_AUTOCOMPLETE, IX_MODAL_SUBMIT = 1, 2, 3, 4, 5
CB_PONG, CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE = 1, 4, 5, 6, 7
CB_AUTOCOMPLETE, CB_MODAL = 8, 9

_MENTION_RE = re.compile(r"<@!?(\d+)>")


def filesize_limit_for_tier(premium_tier: int) -> int:
    """Per-file upload limit of a guild (discord.py `_PREMIUM_GUILD_LIMITS`)."""
    return {2: 50 * MiB, 3: 100 * MiB}.get(premium_tier, 10 * MiB)


def snowflake_time(snowflake: int) -> datetime:
    return datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, tz=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


class Clock:
    """Wall and monotonic time, both shiftable so tests can age tokens without sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset.total_seconds()

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


class Snowflakes:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._increment = itertools.count(1)

    def next(self, at: datetime | None = None, *, shard: tuple[int, int] | None = None) -> int:
        """A new id; with `shard=(id, count)`, a guild id on that shard (up to count-1 ms ahead)."""
        moment = at or self._clock.now()
        millis = int(moment.timestamp() * 1000) - DISCORD_EPOCH_MS
        if shard is not None:
            millis += (shard[0] - millis) % shard[1]
        return (millis << 22) | (next(self._increment) & 0xFFF)


@dataclass(eq=False)
class User:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self) -> JSON:
        data: JSON = {
            "id": str(self.id), "username": self.username, "discriminator": "0",
            "global_name": self.global_name, "avatar": None, "public_flags": 0, "flags": 0,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass(eq=False)
class Role:
    id: int
    name: str
    permissions: int = 0
    position: int = 0
    managed: bool = False
    bot_id: int | None = None

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def payload(self) -> JSON:
        data: JSON = {
            "id": str(self.id), "name": self.name, "permissions": str(self.permissions),
            "position": self.position, "color": 0, "colors": {"primary_color": 0}, "hoist": False,
            "icon": None, "unicode_emoji": None, "managed": self.managed, "mentionable": False, "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass(eq=False)
class Channel:
    id: int
    name: str
    type: int = 0  # 0 guild text, 1 DM
    guild_id: int | None = None
    position: int = 0
    topic: str | None = None
    # Permission overwrites as Discord sends them: {"id", "type": 0 role | 1 member, "allow", "deny"}.
    overwrites: list[JSON] = field(default_factory=list)
    recipient: User | None = None

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    @property
    def is_dm(self) -> bool:
        return self.type == 1

    def payload(self) -> JSON:
        if self.is_dm:
            assert self.recipient is not None
            return {"id": str(self.id), "type": 1, "last_message_id": None, "flags": 0,
                    "recipients": [self.recipient.payload()]}
        return {
            "id": str(self.id), "type": self.type, "guild_id": str(self.guild_id), "name": self.name,
            "position": self.position, "topic": self.topic, "nsfw": False, "parent_id": None,
            "rate_limit_per_user": 0, "last_message_id": None, "flags": 0,
            "permission_overwrites": [dict(o) for o in self.overwrites],
        }


@dataclass(eq=False)
class Member:
    user: User
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = "2024-01-01T00:00:00+00:00"

    def payload(self, *, with_user: bool = True, permissions: int | None = None) -> JSON:
        data: JSON = {
            "roles": [str(r) for r in self.role_ids], "joined_at": self.joined_at, "nick": self.nick,
            "avatar": None, "banner": None, "deaf": False, "mute": False, "flags": 0, "pending": False,
            "premium_since": None, "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


@dataclass(eq=False)
class Guild:
    id: int
    name: str
    owner_id: int
    premium_tier: int = 0
    locale: str = "en-US"
    roles: dict[int, Role] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]

    @property
    def filesize_limit(self) -> int:
        return filesize_limit_for_tier(self.premium_tier)

    def base_permissions(self, user_id: int) -> int:
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        member = self.members.get(user_id)
        perms = self.everyone.permissions
        for role_id in member.role_ids if member else []:
            if role_id in self.roles:
                perms |= self.roles[role_id].permissions
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def permissions_in(self, channel: Channel | None, user_id: int) -> int:
        """Permissions after channel overwrites (developers/topics/permissions.mdx algorithm)."""
        perms = self.base_permissions(user_id)
        if perms & ADMINISTRATOR or channel is None:
            return perms
        member = self.members.get(user_id)
        role_ids = set(member.role_ids) if member else set()
        by_id = {int(o["id"]): o for o in channel.overwrites}
        if (everyone := by_id.get(self.id)) is not None:
            perms = (perms & ~int(everyone["deny"])) | int(everyone["allow"])
        allow = deny = 0
        for overwrite in channel.overwrites:
            if overwrite["type"] == 0 and int(overwrite["id"]) in role_ids:
                allow |= int(overwrite["allow"])
                deny |= int(overwrite["deny"])
        perms = (perms & ~deny) | allow
        if (own := by_id.get(user_id)) is not None and own["type"] == 1:
            perms = (perms & ~int(own["deny"])) | int(own["allow"])
        return perms

    def payload(self, *, members: Iterable[Member]) -> JSON:
        """The full guild object of a GUILD_CREATE."""
        member_list = list(members)
        return {
            "id": str(self.id), "name": self.name, "icon": None, "splash": None, "discovery_splash": None,
            "owner_id": str(self.owner_id), "afk_channel_id": None, "afk_timeout": 300,
            "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
            "roles": [r.payload() for r in self.roles.values()], "emojis": [], "stickers": [], "features": [],
            "mfa_level": 0, "application_id": None, "system_channel_id": None, "system_channel_flags": 0,
            "rules_channel_id": None, "vanity_url_code": None, "description": None, "banner": None,
            "premium_tier": self.premium_tier, "premium_subscription_count": 0,
            "preferred_locale": self.locale, "public_updates_channel_id": None, "nsfw_level": 0,
            "premium_progress_bar_enabled": False, "unavailable": False, "large": False, "lazy": True,
            "joined_at": "2024-01-01T00:00:00+00:00", "member_count": len(self.members),
            "channels": [c.payload() for c in self.channels.values()],
            "members": [m.payload() for m in member_list], "voice_states": [], "presences": [],
            "threads": [], "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
        }


@dataclass(eq=False)
class StoredAttachment:
    id: int
    filename: str
    content_type: str
    data: bytes
    url: str
    description: str | None = None
    width: int | None = None
    height: int | None = None
    ephemeral: bool = False

    def payload(self) -> JSON:
        data: JSON = {
            "id": str(self.id), "filename": self.filename, "size": len(self.data),
            "content_type": self.content_type, "url": self.url, "proxy_url": self.url,
            "width": self.width, "height": self.height,
        }
        if self.description is not None:
            data["description"] = self.description
        if self.ephemeral:
            data["ephemeral"] = True
        return data


@dataclass(eq=False)
class StoredMessage:
    """A message as Discord stores it, plus how it was made (webhook or bot token, raw allowed_mentions)."""

    id: int
    channel_id: int
    guild_id: int | None
    author: User
    content: str = ""
    embeds: list[JSON] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    attachments: list[StoredAttachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    message_reference: JSON | None = None
    allowed_mentions: JSON | None = None
    mentions: list[User] = field(default_factory=list)
    mention_role_ids: list[int] = field(default_factory=list)
    interaction: FakeInteraction | None = None
    via_webhook: bool = False
    application_id: int | None = None
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    edited_timestamp: datetime | None = None
    deleted: bool = False
    tts: bool = False
    nonce: str | None = None  # as sent (channel posts with enforce_nonce are deduplicated on it)
    # Each accepted edit's JSON body, oldest first (progress edits of @original are visible here).
    edits: list[JSON] = field(default_factory=list)

    @property
    def files(self) -> list[tuple[str, bytes]]:
        return [(a.filename, a.data) for a in self.attachments]

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & FLAG_LOADING)

    @property
    def mentioned_user_ids(self) -> list[int]:
        return [u.id for u in self.mentions]

    @property
    def custom_ids(self) -> list[str]:
        return [str(c["custom_id"]) for c in iter_components(self.components) if "custom_id" in c]

    @property
    def reply_to_id(self) -> int | None:
        ref = self.message_reference
        return int(ref["message_id"]) if ref and ref.get("message_id") else None

    def payload(self, *, referenced: StoredMessage | None = None, blank_content: bool = False) -> JSON:
        data: JSON = {
            "id": str(self.id), "channel_id": str(self.channel_id), "author": self.author.payload(),
            "content": "" if blank_content else self.content,
            "timestamp": iso(self.timestamp),
            "edited_timestamp": iso(self.edited_timestamp) if self.edited_timestamp else None,
            "tts": self.tts, "mention_everyone": False,
            "mentions": [u.payload() for u in self.mentions],
            "mention_roles": [str(r) for r in self.mention_role_ids],
            "attachments": [] if blank_content else [a.payload() for a in self.attachments],
            "embeds": [] if blank_content else [dict(e) for e in self.embeds],
            "components": [] if blank_content else [dict(c) for c in self.components],
            "pinned": False, "type": self.type, "flags": self.flags,
        }
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if self.via_webhook and self.application_id is not None:
            data["webhook_id"] = str(self.application_id)
            data["application_id"] = str(self.application_id)
        if self.message_reference is not None:
            data["message_reference"] = dict(self.message_reference)
            if referenced is not None:
                data["referenced_message"] = referenced.payload()
        if self.interaction is not None:
            data["interaction_metadata"] = self.interaction.metadata()
            data["interaction"] = {"id": str(self.interaction.id), "type": self.interaction.type,
                                   "name": self.interaction.name, "user": self.interaction.user.payload()}
        return data


def iter_components(components: Iterable[JSON]) -> Iterable[JSON]:
    """Every component, depth first (action rows, containers, sections, labels)."""
    for component in components:
        yield component
        yield from iter_components(component.get("components", []))
        if isinstance(component.get("component"), dict):
            yield from iter_components([component["component"]])
        if isinstance(component.get("accessory"), dict):
            yield from iter_components([component["accessory"]])


def mentioned_ids(content: str) -> list[int]:
    return [int(m) for m in _MENTION_RE.findall(content)]


@dataclass(frozen=True)
class Callback:
    """The bot's accepted answer to an interaction (POST .../callback)."""

    type: int
    data: JSON
    at: float


@dataclass(frozen=True)
class Rejection:
    """An error the fake returned for a call tied to an interaction."""

    method: str
    path: str
    status: int
    code: int


class Waiter(Protocol):
    def wait_for(self, predicate: Callable[[], T | None], timeout: float = ..., *,
                 what: str = ...) -> Awaitable[T]: ...

    def interaction_messages(self, interaction: FakeInteraction) -> list[StoredMessage]: ...


@dataclass(eq=False)
class FakeInteraction:
    """An interaction the fake dispatched, with everything the bot answered to it."""

    id: int
    token: str
    type: int
    name: str
    payload: JSON
    user: User
    guild_id: int | None
    channel_id: int
    attachment_size_limit: int
    dispatched_at: float  # queued for the gateway (the 3 s acknowledgement window starts here)
    waiter: Waiter
    command_type: int | None = None
    source_message_id: int | None = None  # the message a component was clicked on
    callback: Callback | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    # When the gateway frame carrying it was handed to the socket: later than `dispatched_at` when
    # the fake's own writer is busy (a burst of 1,000 queues them all at once).
    sent_at: float | None = None

    @property
    def created_at(self) -> datetime:
        return snowflake_time(self.id)

    @property
    def custom_id(self) -> str | None:
        value = self.payload["data"].get("custom_id")
        return str(value) if value is not None else None

    @property
    def choices(self) -> list[JSON] | None:
        """Autocomplete choices the bot answered, once it has."""
        if self.callback is None or self.callback.type != CB_AUTOCOMPLETE:
            return None
        return list(self.callback.data.get("choices", []))

    @property
    def modal(self) -> JSON | None:
        if self.callback is None or self.callback.type != CB_MODAL:
            return None
        return self.callback.data

    @property
    def messages(self) -> list[StoredMessage]:
        """Original response (once it has content) and followups, in order."""
        return self.waiter.interaction_messages(self)

    def metadata(self) -> JSON:
        owners = {"0": str(self.guild_id)} if self.guild_id else {"1": str(self.user.id)}
        data: JSON = {"id": str(self.id), "type": self.type, "user": self.user.payload(),
                      "authorizing_integration_owners": owners}
        if self.type == IX_COMMAND:
            data["name"] = self.name
            data["command_type"] = self.command_type or 1
        if self.source_message_id is not None:
            data["interacted_message_id"] = str(self.source_message_id)
        return data

    async def wait_callback(self, timeout: float = 10.0) -> Callback:
        return await self.waiter.wait_for(lambda: self.callback, timeout,
                                          what=f"a callback to interaction {self.name!r}")

    async def wait_rejection(self, timeout: float = 10.0) -> Rejection:
        return await self.waiter.wait_for(lambda: self.rejections[0] if self.rejections else None,
                                          timeout, what=f"a rejected call for interaction {self.name!r}")

    async def wait_messages(self, count: int = 1, timeout: float = 10.0) -> list[StoredMessage]:
        """Wait until the original response and followups number at least `count`."""
        def ready() -> list[StoredMessage] | None:
            messages = self.messages
            return messages if len(messages) >= count else None

        return await self.waiter.wait_for(ready, timeout, what=f"{count} message(s) for {self.name!r}")

    async def wait_response(self, timeout: float = 10.0) -> StoredMessage:
        """The first message of this interaction that is not a loading placeholder."""
        return (await self.wait_messages(1, timeout))[0]


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF, JPEG or WebP header (what Discord reports), else None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if chunk == b"VP8 ":
            return (int.from_bytes(data[26:28], "little") & 0x3FFF,
                    int.from_bytes(data[28:30], "little") & 0x3FFF)
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            length = int.from_bytes(data[i + 2:i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
            i += 2 + length
    return None


def entity_id(value: Any) -> int:
    """An id from an entity (User, Channel, Guild, Role, StoredMessage, Member) or an int."""
    if isinstance(value, Member):
        return value.user.id
    if isinstance(value, int):
        return value
    return int(value.id)


class DiscordState:
    """The world behind the fake: who exists, where, and every message and interaction."""

    def __init__(self, *, app_id: int | None = None, token: str = "fake-bot-token",
                 bot_name: str = "SeedreamBot") -> None:
        self.clock = Clock()
        self.snowflakes = Snowflakes(self.clock)
        self.token = token
        self.base_url = "http://127.0.0.1:0"
        self.bot_user = User(self.snowflakes.next(), bot_name, bot=True)
        self.app_id = app_id or self.bot_user.id
        self.users: dict[int, User] = {self.bot_user.id: self.bot_user}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.all_messages: dict[int, StoredMessage] = {}
        self.attachments: dict[int, StoredAttachment] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.global_commands: list[JSON] = []
        self.guild_commands: dict[int, list[JSON]] = {}
        # The app's Developer Portal switches for privileged intents.
        self.portal_intents = PRIVILEGED_INTENTS

    @property
    def application_flags(self) -> int:
        """The application's `flags`: a GATEWAY_* bit for each privileged intent on in the portal."""
        return sum(flag for intent, flag in APP_FLAG_FOR_INTENT.items() if self.portal_intents & intent)

    # -- building the world -------------------------------------------------------------------

    def add_user(self, username: str, *, global_name: str | None = None, bot: bool = False) -> User:
        user = User(self.snowflakes.next(), username, global_name or username.title(), bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, *, premium_tier: int = 0, owner: User | None = None,
                  everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
                  bot_permissions: int = BOT_ROLE_PERMISSIONS, shard: tuple[int, int] | None = None) -> Guild:
        """A guild with @everyone, the bot's managed role, and the bot as a member.

        `shard=(id, count)` picks an id that gateway shard `id` of `count` owns.
        """
        guild_id = self.snowflakes.next(shard=shard)
        owner_id = owner.id if owner else self.snowflakes.next()
        guild = Guild(guild_id, name, owner_id, premium_tier)
        guild.roles[guild_id] = Role(guild_id, "@everyone", everyone_permissions)
        bot_role = self.add_role(guild, self.bot_user.username, permissions=bot_permissions)
        bot_role.managed, bot_role.bot_id = True, self.bot_user.id
        guild.members[self.bot_user.id] = Member(self.bot_user, [bot_role.id])
        self.guilds[guild_id] = guild
        return guild

    def add_role(self, guild: Guild, name: str, *, permissions: int = 0) -> Role:
        role = Role(self.snowflakes.next(), name, permissions, position=len(guild.roles))
        guild.roles[role.id] = role
        return role

    def add_channel(self, guild: Guild, name: str, *, overwrites: list[JSON] | None = None) -> Channel:
        channel = Channel(self.snowflakes.next(), name, 0, guild.id, position=len(guild.channels),
                          overwrites=list(overwrites or []))
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        return channel

    def add_member(self, guild: Guild, user: User, *, roles: Iterable[Role] = ()) -> Member:
        member = Member(user, [r.id for r in roles])
        guild.members[user.id] = member
        return member

    def dm_channel(self, user: User) -> Channel:
        """The bot's DM channel with `user` (created on first use, as POST /users/@me/channels does)."""
        for channel in self.channels.values():
            if channel.is_dm and channel.recipient is user:
                return channel
        channel = Channel(self.snowflakes.next(), "", 1, recipient=user)
        self.channels[channel.id] = channel
        return channel

    # -- reading the world --------------------------------------------------------------------

    def guild_of(self, channel: Channel) -> Guild | None:
        return self.guilds.get(channel.guild_id) if channel.guild_id else None

    @property
    def commands(self) -> list[JSON]:
        """Every synced application command: global first, then each guild's."""
        return [*self.global_commands, *itertools.chain.from_iterable(self.guild_commands.values())]

    def command(self, name: str, *, type: int = 1, guild: Guild | int | None = None) -> JSON | None:
        """The synced command a user in `guild` would see under `name` (guild commands win)."""
        pools = [self.guild_commands.get(entity_id(guild), [])] if guild is not None else []
        for pool in [*pools, self.global_commands]:
            for command in pool:
                if command["name"] == name and int(command.get("type", 1)) == type:
                    return command
        return None

    def messages(self, channel: Channel | int, *, include_ephemeral: bool = False,
                 include_deleted: bool = False) -> list[StoredMessage]:
        """Messages in a channel, oldest first: what everyone sees unless asked for more."""
        channel_id = entity_id(channel)
        return [m for m in self.all_messages.values() if m.channel_id == channel_id
                and (include_ephemeral or not m.ephemeral) and (include_deleted or not m.deleted)]

    def bot_messages(self, channel: Channel | int | None = None) -> list[StoredMessage]:
        """Everything the bot created (channel and interaction messages, ephemeral too), oldest first."""
        return [m for m in self.all_messages.values() if m.author is self.bot_user and not m.deleted
                and (channel is None or m.channel_id == entity_id(channel))]

    def interaction_messages(self, interaction: FakeInteraction) -> list[StoredMessage]:
        """Original response (unless still a loading placeholder) and followups, in order."""
        ids = [interaction.original_message_id, *interaction.followup_ids]
        found = [self.all_messages.get(i) for i in ids if i is not None]
        return [m for m in found if m is not None and not m.deleted and not m.loading
                and m.interaction is interaction]

    # -- messages -----------------------------------------------------------------------------

    def cdn_url(self, attachment_id: int, filename: str) -> str:
        return f"{self.base_url}/cdn/attachments/{attachment_id}/{filename}"

    def store_attachment(self, filename: str, data: bytes, content_type: str | None = None, *,
                         description: str | None = None, ephemeral: bool = False) -> StoredAttachment:
        kind = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        attachment_id = self.snowflakes.next()
        size = image_size(data)
        attachment = StoredAttachment(attachment_id, filename, kind, data, self.cdn_url(attachment_id, filename),
                                      description, size[0] if size else None, size[1] if size else None,
                                      ephemeral)
        self.attachments[attachment_id] = attachment
        return attachment

    def resolve_mentions(self, content: str, allowed: JSON | None, reference: StoredMessage | None,
                         author: User) -> tuple[list[User], list[int]]:
        """Who a message pings, after allowed_mentions (absent means: everyone named, and the replied user)."""
        parse = set(allowed.get("parse") or []) if allowed is not None else {"users", "roles"}
        listed_users = {int(u) for u in (allowed or {}).get("users") or []}
        listed_roles = {int(r) for r in (allowed or {}).get("roles") or []}
        users = [self.users[i] for i in mentioned_ids(content)
                 if i in self.users and ("users" in parse or i in listed_users)]
        roles = [int(r) for r in re.findall(r"<@&(\d+)>", content)
                 if "roles" in parse or int(r) in listed_roles]
        replied = allowed.get("replied_user", False) if allowed is not None else True
        # Replies to webhook-authored (interaction) messages do not ping their author
        # (discord/discord-api-docs#5395), so they do not unlock message content either.
        if reference is not None and replied and not reference.via_webhook \
                and reference.author is not author and reference.author not in users:
            users.append(reference.author)
        return users, roles

    def add_message(self, message: StoredMessage) -> StoredMessage:
        self.all_messages[message.id] = message
        return message
