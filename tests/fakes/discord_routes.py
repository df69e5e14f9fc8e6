"""The fake Discord's REST routes: identity, commands, interaction callbacks, webhooks, channels.

Each handler validates like Discord (raising `DiscordError` with the real status and code)
and updates the world in `DiscordState`; `fake_discord.FakeDiscord` serves them over HTTP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web

from tests.fakes.discord_gateway import (
    GatewaySession,
    message_event,
    visible_without_intent,
)
from tests.fakes.discord_limits import (
    DiscordError,
    check_commands,
    check_files,
    check_message,
    invalid_form,
    too_long,
)
from tests.fakes.discord_state import (
    ATTACH_FILES,
    CB_AUTOCOMPLETE,
    CB_DEFERRED_MESSAGE,
    CB_DEFERRED_UPDATE,
    CB_MESSAGE,
    CB_MODAL,
    CB_UPDATE,
    FLAG_COMPONENTS_V2,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    INTENT_MESSAGE_CONTENT,
    IX_AUTOCOMPLETE,
    IX_COMMAND,
    IX_COMPONENT,
    IX_MODAL_SUBMIT,
    JSON,
    MANAGE_MESSAGES,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    Callback,
    Channel,
    DiscordState,
    FakeInteraction,
    Guild,
    StoredMessage,
    snowflake_time,
)

DM_FILESIZE_LIMIT = 10 * 2**20

# Which callback types each interaction type may use (receiving-and-responding.mdx).
ALLOWED_CALLBACKS = {
    IX_COMMAND: {CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_MODAL},
    IX_COMPONENT: {CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE, CB_MODAL},
    IX_AUTOCOMPLETE: {CB_AUTOCOMPLETE},
    IX_MODAL_SUBMIT: {CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE},
}


@dataclass(frozen=True)
class Part:
    """One multipart part (payload_json or files[n])."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass(eq=False)
class RecordedRequest:
    method: str
    path: str  # without /api/v10
    query: dict[str, str]
    headers: dict[str, str]
    at: float
    json: Any = None
    parts: list[Part] = field(default_factory=list)
    status: int | None = None
    response: Any = None
    interaction: FakeInteraction | None = None

    @property
    def payload(self) -> Any:
        """The JSON body, or the parsed payload_json part of a multipart body."""
        for part in self.parts:
            if part.name == "payload_json":
                return json.loads(part.data)
        return self.json

    @property
    def files(self) -> list[tuple[str, bytes]]:
        return [(p.filename or p.name, p.data) for p in self.parts if p.name != "payload_json"]

    def __str__(self) -> str:
        code = self.response.get("code") if isinstance(self.response, dict) else None
        return f"{self.method} {self.path} -> {self.status}" + (f" (code {code})" if code else "")


Handler = Callable[[RecordedRequest, re.Match[str]], Awaitable[web.StreamResponse]]


NONCE_WINDOW_SECONDS = 300


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """discord.py parses JSON only when content-type is exactly `application/json` (no charset)."""
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


def no_content() -> web.Response:
    return web.Response(status=204)


class DiscordRoutes(DiscordState):
    """Route handlers plus the gateway fan-out they need (MESSAGE_CREATE/UPDATE/DELETE)."""

    def __init__(self, *, app_id: int | None = None, token: str = "fake-bot-token") -> None:
        super().__init__(app_id=app_id, token=token)
        self.owner = self.add_user("owner")
        self.ack_deadline = 3.0
        self.token_lifetime = timedelta(minutes=15)
        self.sessions: list[GatewaySession] = []
        # GET /gateway/bot: the shard count Discord recommends and IDENTIFYs allowed per 5 s.
        self.recommended_shards = 1
        self.max_concurrency = 1
        self.advertised_gateway_url: str | None = None  # the URL it names; default: this fake's /gw

    @property
    def gateway_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/gw"

    def route_table(self) -> list[tuple[str, re.Pattern[str], Handler, bool]]:
        """(method, path pattern without /api/v10, handler, needs the bot token)."""
        app = r"(?P<app>\d+)"
        table: list[tuple[str, str, Handler, bool]] = [
            ("GET", r"/users/@me", self._get_me, True),
            ("GET", r"/users/(?P<uid>\d+)", self._get_user, True),
            ("POST", r"/users/@me/channels", self._open_dm, True),
            ("GET", r"/oauth2/applications/@me", self._get_application, True),
            ("GET", r"/applications/@me", self._get_application, True),
            ("GET", r"/users/@me/guilds", self._get_my_guilds, True),
            ("GET", r"/gateway(/bot)?", self._get_gateway, False),
            ("GET", rf"/applications/{app}(/guilds/(?P<gid>\d+))?/commands", self._get_commands, True),
            ("PUT", rf"/applications/{app}(/guilds/(?P<gid>\d+))?/commands", self._put_commands, True),
            ("POST", rf"/applications/{app}(/guilds/(?P<gid>\d+))?/commands", self._post_command, True),
            ("POST", r"/interactions/(?P<iid>\d+)/(?P<token>[^/]+)/callback", self._callback, False),
            ("POST", rf"/webhooks/{app}/(?P<token>[^/]+)", self._followup, False),
            ("GET", rf"/webhooks/{app}/(?P<token>[^/]+)/messages/(?P<mid>@original|\d+)",
             self._get_webhook_message, False),
            ("PATCH", rf"/webhooks/{app}/(?P<token>[^/]+)/messages/(?P<mid>@original|\d+)",
             self._edit_webhook_message, False),
            ("DELETE", rf"/webhooks/{app}/(?P<token>[^/]+)/messages/(?P<mid>@original|\d+)",
             self._delete_webhook_message, False),
            ("GET", r"/channels/(?P<cid>\d+)", self._get_channel, True),
            ("POST", r"/channels/(?P<cid>\d+)/typing", self._typing, True),
            ("POST", r"/channels/(?P<cid>\d+)/messages", self._create_channel_message, True),
            ("GET", r"/channels/(?P<cid>\d+)/messages", self._list_channel_messages, True),
            ("GET", r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)", self._get_channel_message, True),
            ("PATCH", r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)", self._edit_channel_message, True),
            ("DELETE", r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)", self._delete_channel_message, True),
            ("GET", r"/guilds/(?P<gid>\d+)", self._get_guild, True),
            ("GET", r"/guilds/(?P<gid>\d+)/channels", self._get_guild_channels, True),
            ("GET", r"/guilds/(?P<gid>\d+)/roles", self._get_guild_roles, True),
            ("GET", r"/guilds/(?P<gid>\d+)/members/(?P<uid>\d+)", self._get_member, True),
        ]
        return [(m, re.compile(p + "$"), h, auth) for m, p, h, auth in table]

    def _live_sessions(self) -> list[GatewaySession]:
        return [s for s in self.sessions if s.identified]

    def sessions_for(self, guild_id: int | None) -> list[GatewaySession]:
        """Identified sessions whose shard receives the events of `guild_id` (None: DMs)."""
        return [s for s in self._live_sessions() if s.owns(guild_id)]

    def _message_to_gateway(self, message: StoredMessage, event: str = "MESSAGE_CREATE") -> None:
        for session in self._live_sessions():
            data = message_event(self, session, message)
            if data is not None:
                session.dispatch(event, data)

    # -- REST: identity, commands -------------------------------------------------------------

    async def _get_me(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        return json_response({**self.bot_user.payload(), "verified": True, "mfa_enabled": False})

    async def _get_user(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        user = self.users.get(int(match["uid"]))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(user.payload())

    async def _open_dm(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        user = self.users.get(int((record.json or {}).get("recipient_id") or 0))
        if user is None:
            raise DiscordError(400, 50033, "Invalid Recipient(s)")
        return json_response(self.dm_channel(user).payload())

    async def _get_application(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        return json_response({
            "id": str(self.app_id), "name": self.bot_user.username, "description": "", "icon": None,
            "bot_public": True, "bot_require_code_grant": False, "owner": self.owner.payload(),
            "verify_key": "0" * 64, "flags": self.application_flags, "team": None, "summary": "", "rpc_origins": [],
            "bot": self.bot_user.payload(), "interactions_endpoint_url": None, "redirect_uris": [],
        })

    async def _get_my_guilds(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        """Partial guilds, ordered by id, paged by `after` / `before` and `limit` (at most 200)."""
        guilds = sorted(self.guilds.values(), key=lambda g: g.id)
        if "after" in record.query:
            guilds = [g for g in guilds if g.id > int(record.query["after"])]
        if "before" in record.query:
            guilds = [g for g in guilds if g.id < int(record.query["before"])]
        limit = int(record.query.get("limit", 200))
        if not 1 <= limit <= 200:
            raise invalid_form("limit", "NUMBER_TYPE_MAX", "int value should be less than or equal to 200.")
        return json_response([{
            "id": str(g.id), "name": g.name, "icon": None, "banner": None, "owner": g.owner_id == self.bot_user.id,
            "permissions": str(g.base_permissions(self.bot_user.id)), "features": [],
        } for g in guilds[:limit]])

    async def _get_gateway(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        return json_response({
            "url": self.advertised_gateway_url or self.gateway_url, "shards": self.recommended_shards,
            "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0,
                                    "max_concurrency": self.max_concurrency}})

    def _command_pool(self, match: re.Match[str]) -> tuple[list[JSON], int | None]:
        if int(match["app"]) != self.app_id:
            raise DiscordError(403, 50001, "Missing Access")
        if match["gid"] is None:
            return self.global_commands, None
        guild_id = int(match["gid"])
        if guild_id not in self.guilds:
            raise DiscordError(403, 50001, "Missing Access")
        return self.guild_commands.setdefault(guild_id, []), guild_id

    def _stored_command(self, body: JSON, pool: list[JSON], guild_id: int | None) -> JSON:
        """Discord keeps a command's id across overwrites when name and type match."""
        kind = int(body.get("type", 1))
        old = next((c for c in pool if c["name"] == body["name"] and c["type"] == kind), None)
        command: JSON = {"default_member_permissions": None, "nsfw": False, "description": "",
                         **body, "type": kind, "application_id": str(self.app_id),
                         "id": old["id"] if old else str(self.snowflakes.next()),
                         "version": str(self.snowflakes.next())}
        if command["default_member_permissions"] is not None:  # Discord answers permissions as a string
            command["default_member_permissions"] = str(command["default_member_permissions"])
        if guild_id is not None:
            command["guild_id"] = str(guild_id)
        return command

    async def _get_commands(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        return json_response(self._command_pool(match)[0])

    async def _put_commands(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        pool, guild_id = self._command_pool(match)
        body = list(record.json or [])
        check_commands(body)
        pool[:] = [self._stored_command(c, pool, guild_id) for c in body]
        return json_response(pool)

    async def _post_command(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        pool, guild_id = self._command_pool(match)
        check_commands([record.json])
        command = self._stored_command(record.json, pool, guild_id)
        pool[:] = [c for c in pool if c["id"] != command["id"]] + [command]
        return json_response(command, 201)

    # -- REST: guilds, channels ---------------------------------------------------------------------

    def _guild(self, match: re.Match[str]) -> Guild:
        guild = self.guilds.get(int(match["gid"]))
        if guild is None:
            raise DiscordError(404, 10004, "Unknown Guild")
        return guild

    def _channel(self, match: re.Match[str]) -> Channel:
        channel = self.channels.get(int(match["cid"]))
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel

    def _require(self, channel: Channel, permissions: int) -> None:
        guild = self.guild_of(channel)
        if guild is not None and guild.permissions_in(channel, self.bot_user.id) & permissions != permissions:
            raise DiscordError(403, 50013, "Missing Permissions")

    async def _get_guild(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        guild = self._guild(match)
        data = guild.payload(members=[])
        for key in ("channels", "members", "voice_states", "presences", "threads", "joined_at", "member_count"):
            data.pop(key)
        return json_response(data)

    async def _get_guild_channels(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        return json_response([c.payload() for c in self._guild(match).channels.values()])

    async def _get_guild_roles(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        return json_response([r.payload() for r in self._guild(match).roles.values()])

    async def _get_member(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        member = self._guild(match).members.get(int(match["uid"]))
        if member is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return json_response(member.payload())

    async def _get_channel(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        return json_response(self._channel(match).payload())

    async def _typing(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        self._require(self._channel(match), VIEW_CHANNEL | SEND_MESSAGES)
        return no_content()

    # -- messages: shared body handling ---------------------------------------------------------

    def _rest_payload(self, message: StoredMessage) -> JSON:
        """A message as REST returns it: content blanked unless the app has the intent in the portal."""
        blank = not self.portal_intents & INTENT_MESSAGE_CONTENT and not visible_without_intent(self, message)
        referenced = self.all_messages.get(message.reply_to_id or 0)
        return message.payload(referenced=referenced, blank_content=blank)

    @staticmethod
    def _new_files(payload: JSON, parts: Sequence[Part]) -> list[tuple[str, bytes, str | None]]:
        """(filename, bytes, description) of each uploaded files[n], named by the attachments array."""
        described = {str(a.get("id")): a for a in payload.get("attachments") or []}
        files = []
        for part in parts:
            if part.name == "payload_json":
                continue
            index = part.name.removeprefix("files[").removesuffix("]")
            meta = described.get(index, {})
            files.append((str(meta.get("filename") or part.filename or part.name), part.data,
                          meta.get("description")))
        return files

    def _write_message(self, message: StoredMessage, payload: JSON, parts: Sequence[Part], *,
                       size_limit: int, creating: bool, allowed_flags: int) -> None:
        """Validate a create/edit body like Discord, then apply it to `message`."""
        new_files = self._new_files(payload, parts)
        kept = message.attachments
        if "attachments" in payload and not creating:
            keep_ids = {str(a.get("id")) for a in payload["attachments"] or []}
            kept = [a for a in message.attachments if str(a.id) in keep_ids]
        check_files([(name, len(data)) for name, data, _ in new_files], len(kept), size_limit)
        # Completing a loading placeholder must produce a non-empty message, like a create.
        check_message(payload, creating=creating or message.loading, has_files=bool(new_files or kept))
        if "content" in payload:
            message.content = str(payload["content"] or "")
        if "embeds" in payload:
            message.embeds = list(payload["embeds"] or [])
        if "components" in payload:
            message.components = list(payload["components"] or [])
        if "allowed_mentions" in payload:
            message.allowed_mentions = payload["allowed_mentions"]
        if "tts" in payload:
            message.tts = bool(payload["tts"]) and creating
        requested = int(payload.get("flags") or 0)
        if creating:
            message.flags = requested & allowed_flags
        elif "flags" in payload:
            message.flags = (message.flags & ~FLAG_SUPPRESS_EMBEDS) | (requested & FLAG_SUPPRESS_EMBEDS)
        if not creating and not message.loading:
            message.edited_timestamp = self.clock.now()
            message.edits.append(payload)
        message.flags &= ~FLAG_LOADING
        message.attachments = kept + [self.store_attachment(n, d, description=desc) for n, d, desc in new_files]
        allowed = message.allowed_mentions
        if allowed is None and message.via_webhook:  # interaction webhooks parse user mentions only
            allowed = {"parse": ["users"]}
        referenced = self.all_messages.get(message.reply_to_id or 0)
        message.mentions, message.mention_role_ids = self.resolve_mentions(message.content, allowed, referenced,
                                                                           message.author)

    def _publish(self, message: StoredMessage, event: str = "MESSAGE_CREATE") -> StoredMessage:
        self.add_message(message)
        self._message_to_gateway(message, event)
        return message

    # -- REST: interaction callbacks and webhooks -------------------------------------------------

    def _interaction_message(self, interaction: FakeInteraction) -> StoredMessage:
        kind = {1: 20, 2: 23, 3: 23}.get(interaction.command_type or 0, 0) if interaction.type == IX_COMMAND else 0
        return StoredMessage(self.snowflakes.next(), interaction.channel_id, interaction.guild_id, self.bot_user,
                             type=kind, interaction=interaction, via_webhook=True, application_id=self.app_id,
                             timestamp=self.clock.now())

    async def _callback(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        interaction = self.interactions.get(int(match["iid"]))
        if interaction is None or interaction.token != match["token"]:
            raise DiscordError(404, 10062, "Unknown interaction")
        record.interaction = interaction
        if interaction.callback is not None:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        if self.clock.monotonic() - interaction.dispatched_at > self.ack_deadline:
            raise DiscordError(404, 10062, "Unknown interaction")
        body = record.payload or {}
        kind, data = int(body.get("type", 0)), body.get("data") or {}
        if kind not in ALLOWED_CALLBACKS.get(interaction.type, set()) or (
                kind in (CB_DEFERRED_UPDATE, CB_UPDATE) and interaction.source_message_id is None):
            raise invalid_form("type", "INTERACTION_CALLBACK_TYPE_INVALID", f"Callback type {kind} not allowed here")
        message: StoredMessage | None = None
        if kind == CB_MESSAGE:
            message = self._interaction_message(interaction)
            self._write_message(message, data, record.parts, size_limit=interaction.attachment_size_limit,
                                creating=True, allowed_flags=FLAG_EPHEMERAL | FLAG_SUPPRESS_EMBEDS
                                | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2)
            self._publish(message)
        elif kind == CB_DEFERRED_MESSAGE:
            message = self._interaction_message(interaction)
            message.flags = FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            self._publish(message)
        elif kind in (CB_DEFERRED_UPDATE, CB_UPDATE):
            message = self.all_messages[interaction.source_message_id or 0]
            if kind == CB_UPDATE:
                self._write_message(message, data, record.parts, size_limit=interaction.attachment_size_limit,
                                    creating=False, allowed_flags=0)
                self._message_to_gateway(message, "MESSAGE_UPDATE")
        elif kind == CB_AUTOCOMPLETE and len(data.get("choices") or []) > 25:
            raise too_long("data.choices", 25)
        elif kind == CB_MODAL and (not data.get("custom_id") or len(str(data.get("title", ""))) > 45
                                   or not 1 <= len(data.get("components") or []) <= 5):
            raise invalid_form("data", "MODAL_INVALID",
                               "A modal needs custom_id, a title of at most 45 characters and 1 to 5 components")
        interaction.callback = Callback(kind, data, self.clock.monotonic())
        response: JSON = {"interaction": {"id": str(interaction.id), "type": interaction.type}}
        if message is not None:
            interaction.original_message_id = message.id
            response["interaction"].update({
                "response_message_id": str(message.id), "response_message_loading": message.loading,
                "response_message_ephemeral": message.ephemeral})
            response["resource"] = {"type": kind, "message": message.payload()}
        return json_response(response)

    def _webhook_interaction(self, record: RecordedRequest, match: re.Match[str]) -> FakeInteraction:
        interaction = next((i for i in self.interactions.values() if i.token == match["token"]), None)
        if interaction is None or int(match["app"]) != self.app_id:
            raise DiscordError(404, 10015, "Unknown Webhook")
        record.interaction = interaction
        if self.clock.now() - snowflake_time(interaction.id) > self.token_lifetime:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        if interaction.callback is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        return interaction

    def _webhook_target(self, interaction: FakeInteraction, mid: str) -> StoredMessage:
        ids = [interaction.original_message_id, *interaction.followup_ids]
        message_id = interaction.original_message_id if mid == "@original" else int(mid)
        message = self.all_messages.get(message_id or 0)
        if message is None or message.deleted or message_id not in ids:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    async def _followup(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        interaction = self._webhook_interaction(record, match)
        payload = record.payload or {}
        original = self.all_messages.get(interaction.original_message_id or 0)
        if original is not None and original.loading and not original.deleted and not interaction.followup_ids:
            # The first followup after a "thinking" defer replaces the placeholder and keeps its
            # ephemeral state (receiving-and-responding.mdx, Create Followup Message). Once the
            # placeholder is deleted, a followup is a new message with its own flags.
            self._write_message(original, payload, record.parts, size_limit=interaction.attachment_size_limit,
                                creating=False, allowed_flags=0)
            message = original
            self._message_to_gateway(message, "MESSAGE_UPDATE")
        else:
            message = self._interaction_message(interaction)
            self._write_message(message, payload, record.parts, size_limit=interaction.attachment_size_limit,
                                creating=True, allowed_flags=FLAG_EPHEMERAL | FLAG_SUPPRESS_EMBEDS
                                | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2)
            self._publish(message)
        if message.id != interaction.original_message_id:
            interaction.followup_ids.append(message.id)
        if record.query.get("wait", "").lower() in ("1", "true"):
            return json_response(message.payload())
        return no_content()

    async def _get_webhook_message(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        interaction = self._webhook_interaction(record, match)
        return json_response(self._webhook_target(interaction, match["mid"]).payload())

    async def _edit_webhook_message(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        interaction = self._webhook_interaction(record, match)
        message = self._webhook_target(interaction, match["mid"])
        self._write_message(message, record.payload or {}, record.parts,
                            size_limit=interaction.attachment_size_limit, creating=False, allowed_flags=0)
        self._message_to_gateway(message, "MESSAGE_UPDATE")
        return json_response(message.payload())

    async def _delete_webhook_message(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        interaction = self._webhook_interaction(record, match)
        self._delete(self._webhook_target(interaction, match["mid"]))
        return no_content()

    def _delete(self, message: StoredMessage) -> None:
        message.deleted = True
        for session in self.sessions_for(message.guild_id):
            if not message.ephemeral:
                session.dispatch("MESSAGE_DELETE", {"id": str(message.id), "channel_id": str(message.channel_id),
                                                    **({"guild_id": str(message.guild_id)}
                                                       if message.guild_id else {})})

    # -- REST: channel messages (bot token) -----------------------------------------------------------

    def _channel_message(self, channel: Channel, match: re.Match[str]) -> StoredMessage:
        message = self.all_messages.get(int(match["mid"]))
        if message is None or message.channel_id != channel.id or message.deleted or message.ephemeral:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    async def _create_channel_message(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        channel = self._channel(match)
        payload = record.payload or {}
        self._require(channel, VIEW_CHANNEL | SEND_MESSAGES | (ATTACH_FILES if record.files else 0))
        guild = self.guild_of(channel)
        nonce = payload.get("nonce")
        if nonce is not None and payload.get("enforce_nonce"):
            # Discord: the same author's message with this nonce in the last few minutes is
            # returned instead of creating another.
            for earlier in reversed(self.messages(channel)):
                if (earlier.nonce == str(nonce) and earlier.author.id == self.bot_user.id
                        and (self.clock.now() - earlier.timestamp).total_seconds() < NONCE_WINDOW_SECONDS):
                    return json_response(self._rest_payload(earlier))
        message = StoredMessage(self.snowflakes.next(), channel.id, channel.guild_id, self.bot_user,
                                timestamp=self.clock.now())
        reference = payload.get("message_reference")
        if reference:
            target = self.all_messages.get(int(reference.get("message_id") or 0))
            if target is None or target.deleted or target.ephemeral or target.channel_id != channel.id:
                if reference.get("fail_if_not_exists", True):
                    raise invalid_form("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                                       "Unknown message")
            else:
                message.type = 19
                message.message_reference = {"type": 0, "message_id": str(target.id),
                                             "channel_id": str(channel.id),
                                             **({"guild_id": str(guild.id)} if guild else {})}
        message.nonce = None if nonce is None else str(nonce)
        self._write_message(message, payload, record.parts,
                            size_limit=guild.filesize_limit if guild else DM_FILESIZE_LIMIT, creating=True,
                            allowed_flags=FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2)
        self._publish(message)
        return json_response(self._rest_payload(message))

    async def _list_channel_messages(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        channel = self._channel(match)
        self._require(channel, VIEW_CHANNEL | READ_MESSAGE_HISTORY)
        messages = list(reversed(self.messages(channel)))  # newest first, as Discord returns them
        if "before" in record.query:
            messages = [m for m in messages if m.id < int(record.query["before"])]
        if "after" in record.query:
            messages = [m for m in reversed(messages) if m.id > int(record.query["after"])]
        limit = int(record.query.get("limit", 50))
        return json_response([self._rest_payload(m) for m in messages[:limit]])

    async def _get_channel_message(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        channel = self._channel(match)
        self._require(channel, VIEW_CHANNEL | READ_MESSAGE_HISTORY)
        return json_response(self._rest_payload(self._channel_message(channel, match)))

    async def _edit_channel_message(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        channel = self._channel(match)
        message = self._channel_message(channel, match)
        if message.author is not self.bot_user or message.via_webhook:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        guild = self.guild_of(channel)
        self._write_message(message, record.payload or {}, record.parts,
                            size_limit=guild.filesize_limit if guild else DM_FILESIZE_LIMIT, creating=False,
                            allowed_flags=0)
        self._message_to_gateway(message, "MESSAGE_UPDATE")
        return json_response(self._rest_payload(message))

    async def _delete_channel_message(self, record: RecordedRequest, match: re.Match[str]) -> web.StreamResponse:
        channel = self._channel(match)
        message = self._channel_message(channel, match)
        if message.author is not self.bot_user:
            self._require(channel, MANAGE_MESSAGES)
        self._delete(message)
        return no_content()
