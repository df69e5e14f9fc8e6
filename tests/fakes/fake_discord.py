"""A loopback Discord that the real discord.py 2.7.1 logs in to, connects to and talks to.

REST lives under `/api/v10`, the gateway at `/gw`, attachment bytes at `/cdn/...`. The fake
keeps a small world (`DiscordState`), records every request, enforces the limits a bot trips
over in production (files per message, per-file size, 3 s acknowledgement, 15 min tokens,
double acknowledgement) and can inject faults, as Discord's API documentation describes them.
"""

# Waiting helpers take a `timeout` on purpose: tests read better as `wait_for(..., timeout=2)`.

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Self, TypeVar

from aiohttp import BodyPartReader, WSMsgType, web

from tests.fakes.discord_gateway import (
    HEARTBEAT_INTERVAL_MS,
    GatewaySession,
    ready_events,
)
from tests.fakes.discord_interactions import (
    Envelope,
    Upload,
    build_envelope,
    component_data,
    context_menu_data,
    modal_submit_data,
    slash_data,
    store_upload,
)
from tests.fakes.discord_limits import DiscordError
from tests.fakes.discord_routes import (
    DM_FILESIZE_LIMIT,
    DiscordRoutes,
    Part,
    RecordedRequest,
    json_response,
)
from tests.fakes.discord_state import (
    CB_MODAL,
    IX_AUTOCOMPLETE,
    IX_COMMAND,
    IX_COMPONENT,
    IX_MODAL_SUBMIT,
    JSON,
    PRIVILEGED_INTENTS,
    Channel,
    FakeInteraction,
    Guild,
    Rejection,
    StoredMessage,
    User,
    entity_id,
)
from tests.fakes.loopback import serve_on_loopback

T = TypeVar("T")
API_PREFIX = "/api/v10"


@dataclass(eq=False)
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: JSON
    headers: dict[str, str]
    remaining: int
    after_effect: bool = False  # the request takes effect, then its answer is lost (this error instead)


@dataclass(eq=False)
class Hold:
    """Requests that match wait in the fake, unanswered, until `release()` (see `FakeDiscord.hold`)."""

    method: str
    pattern: re.Pattern[str]
    let_through: int
    held: list[RecordedRequest]
    _released: asyncio.Event
    _process: bool = True
    content: re.Pattern[str] | None = None  # only requests whose payload's content matches

    def release(self, *, process: bool = True) -> None:
        """Answer the held requests: handled as usual, or (`process=False`) refused with a 503 as if
        they never reached Discord. Later matches are no longer held."""
        self._process = process
        self._released.set()


class FakeDiscord(DiscordRoutes):
    """The server plus the world. Start with `async with FakeDiscord() as fake:` (or start/close)."""

    def __init__(self, *, app_id: int | None = None, token: str = "fake-bot-token",
                 gateway_compression: bool = False, port: int = 0) -> None:
        super().__init__(app_id=app_id, token=token)
        self.gateway_compression = gateway_compression
        self.requests: list[RecordedRequest] = []
        self.unhandled: list[RecordedRequest] = []
        self.internal_errors: list[Exception] = []  # bugs in the fake itself; tests may assert it stays empty
        self.faults: list[Fault] = []
        self.holds: list[Hold] = []
        self.default_user: User | None = None
        self.default_channel: Channel | None = None
        self.port = port  # 0: a free one, chosen at start
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._routes = self.route_table()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=256 * 2**20)
        app.router.add_get("/gw", self._gateway)
        app.router.add_get("/cdn/attachments/{attachment_id}/{filename}", self._cdn)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        self.port = await serve_on_loopback(self._runner, self.port)
        self.base_url = f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        for session in self.sessions:
            await session.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def api_base(self) -> str:
        return f"{self.base_url}{API_PREFIX}"

    def env(self) -> dict[str, str]:
        """Environment for a bot process pointed at this fake (bot.config.Settings names)."""
        return {"DISCORD_TOKEN": self.token, "DISCORD_API_BASE_URL": self.api_base,
                "DISCORD_GATEWAY_URL": self.gateway_url}

    @property
    def identified_intents(self) -> int | None:
        """Intents of the most recent IDENTIFY."""
        identified = [s for s in self.sessions if s.intents is not None]
        return identified[-1].intents if identified else None

    def advance_clock(self, delta: timedelta | float) -> None:
        """Move the fake's clock: ages interaction tokens and acknowledgement windows without sleeping."""
        self.clock.advance(delta if isinstance(delta, timedelta) else timedelta(seconds=delta))

    # -- faults and waiting -----------------------------------------------------------------------

    def fail_next(self, method: str, path_regex: str, status: int, json_body: JSON | None = None,
                  headers: Mapping[str, str] | None = None, *, times: int = 1, after_effect: bool = False) -> None:
        """Answer the next `times` matching requests with `status`.

        With `after_effect` the request is carried out first (a message is created) and only its
        answer is replaced: the response lost on the way back, which a retry must not duplicate.

        `path_regex` is searched in the path without /api/v10 (CDN paths start with /cdn/);
        method "*" matches any. A 429 defaults to a JSON `retry_after` of 0.01 s and a `Via`
        header, which discord.py needs before it retries (otherwise it assumes a Cloudflare ban).
        """
        if json_body is None:
            json_body = ({"message": "You are being rate limited.", "retry_after": 0.01, "global": False}
                         if status == 429 else {"message": f"{status}: fault injected by test", "code": 0})
        if headers is None:
            headers = {"Via": "1.1 google"} if status == 429 else {}
        self.faults.append(Fault(method.upper(), re.compile(path_regex), status, json_body,
                                 dict(headers), times, after_effect))

    def hold(self, method: str, path_regex: str, *, after: int = 0, content: str | None = None) -> Hold:
        """Hold matching REST requests (after letting `after` of them through) until released.

        For crash tests: `hold = fake.hold("POST", r"^/webhooks/", after=2)`, wait for
        `hold.held`, kill the bot, then `hold.release(process=False)` (the post never landed) or
        `hold.release()` (it landed, and the bot died before it heard so). With `content`, only
        requests whose payload's `content` matches that regex are held (e.g. the final summary).
        """
        hold = Hold(method.upper(), re.compile(path_regex), after, [], asyncio.Event(),
                    content=re.compile(content) if content is not None else None)
        self.holds.append(hold)
        return hold

    async def _wait_if_held(self, record: RecordedRequest) -> bool:
        """False when a hold refuses this request."""
        for hold in self.holds:
            if hold._released.is_set() or hold.method not in ("*", record.method) \
                    or not hold.pattern.search(record.path):
                continue
            if hold.content is not None and not hold.content.search(str((record.payload or {}).get("content") or "")):
                continue
            if hold.let_through > 0:
                hold.let_through -= 1
                return True
            hold.held.append(record)
            self._notify()
            await hold._released.wait()
            return hold._process
        return True

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.remaining > 0 and fault.method in ("*", method) and fault.pattern.search(path):
                fault.remaining -= 1
                return fault
        return None

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 10.0, *,
                       what: str = "the condition") -> T:
        """Until `predicate()` returns something truthy; re-checked on every change (and every 50 ms)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{self.describe()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 0.05))

    async def wait_for_message(self, channel: Channel | int, predicate: Callable[[StoredMessage], bool]
                               | None = None, timeout: float = 10.0, *,
                               include_ephemeral: bool = False) -> StoredMessage:
        """The oldest message in `channel` that matches (every message if no predicate)."""
        def find() -> StoredMessage | None:
            messages = self.messages(channel, include_ephemeral=include_ephemeral)
            return next((m for m in messages if predicate is None or predicate(m)), None)

        return await self.wait_for(find, timeout, what=f"a message in channel {entity_id(channel)}")

    async def wait_for_request(self, method: str, path_regex: str,
                               predicate: Callable[[RecordedRequest], bool] | None = None,
                               timeout: float = 10.0) -> RecordedRequest:
        """The first answered request matching method (or "*") and path regex."""
        pattern = re.compile(path_regex)

        def find() -> RecordedRequest | None:
            return next((r for r in self.requests if r.status is not None and method in ("*", r.method)
                         and pattern.search(r.path) and (predicate is None or predicate(r))), None)

        return await self.wait_for(find, timeout, what=f"{method} {path_regex}")

    def describe(self, last: int = 15) -> str:
        lines = [f"  {r}" for r in self.requests[-last:]]
        lines += [f"  unhandled: {r.method} {r.path}" for r in self.unhandled]
        lines += [f"  fake internal error: {e!r}" for e in self.internal_errors]
        return "recent requests:\n" + "\n".join(lines or ["  (none)"])

    # -- gateway --------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        compress = self.gateway_compression and request.query.get("compress") == "zlib-stream"
        session = GatewaySession(ws, compress=compress)
        self.sessions.append(session)
        session.send({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}, "s": None, "t": None})
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                await self._gateway_op(session, json.loads(frame.data), request.host)
        finally:
            await session.close()  # also stops its writer task
            self._notify()
        return ws

    async def _gateway_op(self, session: GatewaySession, message: JSON, host: str) -> None:
        op, data = message.get("op"), message.get("d") or {}
        if op == 1:
            session.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            if data.get("token") != self.token:
                await session.close(4004, "Authentication failed.")
                return
            intents = int(data.get("intents", 0))
            if intents & PRIVILEGED_INTENTS & ~self.portal_intents:
                await session.close(4014, "Disallowed intent(s).")
                return
            shard = data.get("shard")
            if shard is not None:
                shard_id, shard_count = (int(x) for x in shard)
                if not 0 <= shard_id < shard_count:
                    await session.close(4010, "Invalid shard.")
                    return
                session.shard = (shard_id, shard_count)
            session.identify, session.intents = data, intents
            for event, payload in ready_events(self, session, host):
                session.dispatch(event, payload)
            self._notify()
        elif op == 6:  # RESUME: the fake keeps no replay buffer, so ask for a fresh IDENTIFY
            session.send({"op": 9, "d": False, "s": None, "t": None})
        elif op == 8:
            guild = self.guilds.get(int(data["guild_id"]))
            if guild is not None:
                session.dispatch("GUILD_MEMBERS_CHUNK", {
                    "guild_id": str(guild.id), "members": [m.payload() for m in guild.members.values()],
                    "chunk_index": 0, "chunk_count": 1, "nonce": data.get("nonce")})

    async def wait_until_connected(self, timeout: float = 10.0, *,
                                   guild: Guild | int | None = None) -> list[GatewaySession]:
        """Identified sessions; with `guild`, those whose shard owns it (waits for one at least)."""
        if guild is None:
            return await self.wait_for(self._live_sessions, timeout, what="a bot to IDENTIFY on the gateway")
        guild_id = entity_id(guild)
        return await self.wait_for(lambda: self.sessions_for(guild_id), timeout,
                                   what=f"a bot to IDENTIFY on the shard of guild {guild_id}")

    async def wait_for_shards(self, shard_ids: Iterable[int], shard_count: int, *, after: int = 0,
                              timeout: float = 10.0) -> list[GatewaySession]:
        """Live sessions identified as each of `shard_ids` of `shard_count`, among `sessions[after:]`."""
        wanted = sorted(shard_ids)

        def found() -> list[GatewaySession] | None:
            live = {s.shard: s for s in self.sessions[after:] if s.identified and s.shard is not None}
            sessions = [live.get((shard, shard_count)) for shard in wanted]
            return [s for s in sessions if s is not None] if all(sessions) else None

        return await self.wait_for(found, timeout, what=f"shards {wanted} of {shard_count} to IDENTIFY")

    async def dispatch(self, event: str, data: JSON) -> None:
        """Send a raw gateway event to every identified connection (with a `guild_id`: its shard's)."""
        guild_id = int(data["guild_id"]) if data.get("guild_id") else None
        for session in await self.wait_until_connected(guild=guild_id):
            session.dispatch(event, data)

    # -- REST plumbing --------------------------------------------------------------------------

    async def _read_body(self, request: web.Request, record: RecordedRequest) -> None:
        # The raw header, not aiohttp's `content_type`: that parses it with the email package, a
        # tenth of the fake's CPU in a burst the bench times.
        if request.headers.get("Content-Type", "").startswith("multipart/form-data"):
            reader = await request.multipart()
            async for part in reader:
                if isinstance(part, BodyPartReader):
                    record.parts.append(Part(part.name or "", part.filename,
                                             part.headers.get("Content-Type", ""), bytes(await part.read())))
        elif request.can_read_body:
            raw = await request.read()
            record.json = json.loads(raw) if raw else None

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        record = RecordedRequest(request.method, "/" + request.match_info["tail"], dict(request.query),
                                 dict(request.headers), time.monotonic())
        await self._read_body(request, record)
        self.requests.append(record)
        try:
            response = await self._route(record)
        except DiscordError as error:
            response = json_response(error.body(), error.status)
            if record.interaction is not None:
                record.interaction.rejections.append(Rejection(record.method, record.path, error.status,
                                                               error.code))
        except Exception as error:  # a bug in the fake: answer 400 so discord.py fails fast instead of
            # retrying a 500 with back-off, and keep it for the test to see.
            logging.getLogger(__name__).exception("fake Discord failed on %s %s", record.method, record.path)
            self.internal_errors.append(error)
            response = json_response({"message": f"fake Discord internal error: {error!r}", "code": 0}, 400)
        record.status = response.status
        if isinstance(response, web.Response) and response.body \
                and response.headers.get("Content-Type", "").startswith("application/json"):
            record.response = json.loads(response.body)  # type: ignore[arg-type]
        self._notify()
        return response

    async def _route(self, record: RecordedRequest) -> web.StreamResponse:
        if not await self._wait_if_held(record):
            return json_response({"message": "503: held request dropped by test", "code": 0}, 503)
        fault = self._take_fault(record.method, record.path)
        if fault is not None and not fault.after_effect:
            return json_response(fault.body, fault.status, fault.headers)
        for method, pattern, handler, needs_auth in self._routes:
            match = pattern.match(record.path)
            if match and method == record.method:
                if needs_auth and record.headers.get("Authorization") != f"Bot {self.token}":
                    raise DiscordError(401, 0, "401: Unauthorized")
                response = await handler(record, match)
                if fault is not None:  # carried out; the answer is lost
                    return json_response(fault.body, fault.status, fault.headers)
                return response
        self.unhandled.append(record)
        raise DiscordError(404, 0, "404: Not Found")

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        record = RecordedRequest("GET", path, dict(request.query), dict(request.headers), time.monotonic())
        self.requests.append(record)
        fault = self._take_fault("GET", path)
        attachment = self.attachments.get(int(request.match_info["attachment_id"]))
        if fault is not None:
            response: web.Response = json_response(fault.body, fault.status, fault.headers)
        elif attachment is None or attachment.filename != request.match_info["filename"]:
            response = web.Response(status=404, text="Not Found")
        else:
            response = web.Response(body=attachment.data, content_type=attachment.content_type)
        record.status = response.status
        self._notify()
        return response

    # -- what users do --------------------------------------------------------------------------------

    def _where(self, channel: Channel | None, guild: Guild | None) -> tuple[Channel, Guild | None]:
        if channel is None and guild is not None:
            channel = next(c for c in guild.channels.values() if c.type == 0)
        channel = channel or self.default_channel
        if channel is None:
            raise ValueError("no channel given and no default_channel set")
        return channel, self.guild_of(channel)

    def _who(self, user: User | None) -> User:
        user = user or self.default_user
        if user is None:
            raise ValueError("no user given and no default_user set")
        return user

    async def _send_interaction(self, envelope: Envelope, kind: int) -> FakeInteraction:
        """Over the gateway to the session(s) of the shard that owns the guild (DMs: shard 0)."""
        guild_id = envelope.guild_id
        sessions = (await self.wait_until_connected(guild=guild_id) if guild_id is not None
                    else await self.wait_for(lambda: self.sessions_for(None), what="shard 0 to IDENTIFY"))
        payload = {**envelope.payload, "type": kind}
        interaction = FakeInteraction(
            int(payload["id"]), str(payload["token"]), kind, envelope.name, payload, envelope.user,
            envelope.guild_id, envelope.channel_id, envelope.attachment_size_limit, self.clock.monotonic(),
            self, envelope.command_type, envelope.source_message_id)
        self.interactions[interaction.id] = interaction
        def sent(at: float) -> None:
            interaction.sent_at = at

        for session in sessions:
            session.dispatch("INTERACTION_CREATE", payload, on_sent=sent)
        return interaction

    async def slash(self, name: str, options: Mapping[str, Any] | None = None, *, user: User | None = None,
                    channel: Channel | None = None, guild: Guild | None = None, attachments: Sequence[Upload] = (),
                    attachment_size_limit: int | None = None, age: timedelta = timedelta(0),
                    subcommand: str | None = None, locale: str = "en-US") -> FakeInteraction:
        """A user runs /name. Option types come from the synced command; returns the tracked interaction.

        `age` backdates the interaction's snowflake (its token expires 15 min after that), while
        the 3 s acknowledgement window starts now. `attachments` fill the command's attachment
        options in order; an attachment option can also be given directly as (filename, bytes[, type]).
        """
        where, guild = self._where(channel, guild)
        data = slash_data(self, name, options or {}, guild=guild, subcommand=subcommand, uploads=attachments)
        limit = attachment_size_limit or (guild.filesize_limit if guild else DM_FILESIZE_LIMIT)
        envelope = build_envelope(self, type=IX_COMMAND, name=name, data=data, user=self._who(user), channel=where,
                                  attachment_size_limit=limit, age=age, locale=locale, command_type=1)
        return await self._send_interaction(envelope, IX_COMMAND)

    async def autocomplete(self, name: str, options: Mapping[str, Any], focused: str, *,
                           user: User | None = None, channel: Channel | None = None,
                           subcommand: str | None = None, timeout: float = 5.0) -> list[JSON]:
        """A user types in option `focused`; returns the choices the bot answered."""
        where, guild = self._where(channel, None)
        data = slash_data(self, name, options, guild=guild, subcommand=subcommand, uploads=(), focused=focused)
        envelope = build_envelope(self, type=IX_AUTOCOMPLETE, name=name, data=data, user=self._who(user),
                                  channel=where, attachment_size_limit=DM_FILESIZE_LIMIT, command_type=1)
        interaction = await self._send_interaction(envelope, IX_AUTOCOMPLETE)
        await interaction.wait_callback(timeout)
        return interaction.choices or []

    async def context_menu(self, name: str, target_message: StoredMessage | None = None, user: User | None = None,
                           *, target_user: User | None = None, channel: Channel | None = None,
                           age: timedelta = timedelta(0), locale: str = "en-US") -> FakeInteraction:
        """A user picks Apps > name on a message (or a user)."""
        if channel is None and target_message is not None:
            channel = self.channels[target_message.channel_id]
        where, guild = self._where(channel, None)
        data = context_menu_data(self, name, guild=guild, target_message=target_message, target_user=target_user)
        envelope = build_envelope(self, type=IX_COMMAND, name=name, data=data, user=self._who(user), channel=where,
                                  attachment_size_limit=guild.filesize_limit if guild else DM_FILESIZE_LIMIT,
                                  age=age, locale=locale, command_type=int(data["type"]))
        return await self._send_interaction(envelope, IX_COMMAND)

    async def click(self, message: StoredMessage, custom_id: str, user: User | None = None, *,
                    values: Sequence[str] | None = None) -> FakeInteraction:
        """A user presses a button (or picks `values` in a select) that is on `message`."""
        channel, guild = self._where(self.channels[message.channel_id], None)
        data = component_data(message, custom_id, values)
        envelope = build_envelope(self, type=IX_COMPONENT, name=custom_id, data=data, user=self._who(user),
                                  channel=channel, message=message,
                                  attachment_size_limit=guild.filesize_limit if guild else DM_FILESIZE_LIMIT)
        return await self._send_interaction(envelope, IX_COMPONENT)

    async def submit_modal(self, opened_by: FakeInteraction, values: Mapping[str, str], user: User | None = None,
                           *, timeout: float = 5.0) -> FakeInteraction:
        """A user fills the modal the bot opened in answer to `opened_by` and presses Submit."""
        callback = await opened_by.wait_callback(timeout)
        if callback.type != CB_MODAL:
            raise ValueError(f"interaction {opened_by.name!r} was answered with type {callback.type}, not a modal")
        data = modal_submit_data(callback.data, values)
        channel = self.channels[opened_by.channel_id]
        source = self.all_messages.get(opened_by.source_message_id or 0)
        envelope = build_envelope(self, type=IX_MODAL_SUBMIT, name=str(callback.data["custom_id"]), data=data,
                                  user=user or opened_by.user, channel=channel, message=source,
                                  attachment_size_limit=opened_by.attachment_size_limit)
        return await self._send_interaction(envelope, IX_MODAL_SUBMIT)

    async def user_message(self, channel: Channel | None, author: User | None, content: str = "", *,
                           attachments: Iterable[Upload] = (), reply_to: StoredMessage | None = None,
                           mentions: Iterable[User] = (), reply_ping: bool = True) -> StoredMessage:
        """A user posts in a channel; the bot gets MESSAGE_CREATE subject to its intents.

        Mentions come from `<@id>` in content, `mentions`, and (with `reply_ping`) the author of
        `reply_to`, except when that message came from an interaction webhook.
        """
        where, guild = self._where(channel, None)
        sender = self._who(author)
        message = StoredMessage(self.snowflakes.next(), where.id, guild.id if guild else None, sender,
                                content=content, timestamp=self.clock.now())
        message.attachments = [store_upload(self, upload) for upload in attachments]
        if reply_to is not None:
            message.type = 19
            message.message_reference = {"type": 0, "message_id": str(reply_to.id), "channel_id": str(where.id),
                                         **({"guild_id": str(guild.id)} if guild else {})}
        allowed = None if reply_ping else {"parse": ["users", "roles"], "replied_user": False}
        message.mentions, message.mention_role_ids = self.resolve_mentions(content, allowed, reply_to, sender)
        message.mentions += [u for u in mentions if u not in message.mentions]
        await self.wait_until_connected(guild=guild)
        return self._publish(message)
