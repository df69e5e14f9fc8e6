"""The fake Discord, exercised by a small stand-in discord.py bot (real discord.py 2.7.1, loopback only)."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket

from bot.config import Settings
from tests.harness import StandardDiscord, running_fake, start_bot


def png(width: int = 2, height: int = 3) -> bytes:
    """A real (tiny) PNG, so dimensions and bytes can be checked end to end."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


IMAGE = png()


class HelloButton(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Hello", custom_id="panel:hello")
    async def hello(self, interaction: discord.Interaction, button: discord.ui.Button[HelloButton]) -> None:
        await interaction.response.send_message(f"hello {interaction.user.name}", ephemeral=True)


class DescribeModal(discord.ui.Modal, title="Describe the image"):
    prompt: discord.ui.TextInput[DescribeModal] = discord.ui.TextInput(label="Prompt", custom_id="prompt",
                                                                       max_length=200)

    def __init__(self, target: discord.Message) -> None:
        super().__init__(custom_id="describe")
        self.target = target

    async def on_submit(self, interaction: discord.Interaction) -> None:
        names = ",".join(a.filename for a in self.target.attachments)
        await interaction.response.send_message(f"{self.prompt.value} for {names}")


class StandInBot(commands.Bot):
    """Just enough bot to drive every path of the fake."""

    def __init__(self, settings: Settings, *, intents: discord.Intents | None = None) -> None:
        discord.http.Route.BASE = settings.discord_api_base_url
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url or "")
        super().__init__(command_prefix="!", intents=intents or discord.Intents.default(),
                         guild_ready_timeout=0.05)
        self.gate = asyncio.Event()
        self.errors: list[Exception] = []
        self.seen: list[discord.Message] = []
        self.add_commands()

    async def setup_hook(self) -> None:
        self.add_view(HelloButton())
        await self.tree.sync()

    async def on_message(self, message: discord.Message) -> None:
        if message.author != self.user:
            self.seen.append(message)

    def add_commands(self) -> None:
        tree = self.tree

        @tree.error
        async def on_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
            self.errors.append(getattr(error, "original", error))

        @tree.command()
        async def ping(interaction: discord.Interaction) -> None:
            """Answer pong."""
            await interaction.response.send_message("pong")

        @tree.command()
        async def render(interaction: discord.Interaction, count: int = 1, size: int = 0) -> None:
            """Defer, then send `count` images (padded to `size` bytes) as one followup."""
            await interaction.response.defer(thinking=True)
            body = IMAGE + b"\x00" * max(0, size - len(IMAGE))
            files = [discord.File(io.BytesIO(body), f"out{i}.png") for i in range(count)]
            await interaction.followup.send("done", files=files)

        @tree.command()
        async def echo(interaction: discord.Interaction, text: str, times: int = 1) -> None:
            """Repeat text."""
            await interaction.response.send_message(text * times)

        @tree.command()
        async def slow(interaction: discord.Interaction) -> None:
            """Answer only once the test opens the gate."""
            await self.gate.wait()
            await interaction.response.send_message("finally")

        @tree.command()
        async def late(interaction: discord.Interaction) -> None:
            """Deliver through the interaction, else as a channel message replying to nobody."""
            await interaction.response.defer(thinking=True)
            file = discord.File(io.BytesIO(IMAGE), "late.png")
            try:
                await interaction.followup.send(file=file)
            except discord.HTTPException as error:
                self.errors.append(error)
                assert interaction.channel is not None and isinstance(interaction.channel, discord.TextChannel)
                await interaction.channel.send(f"{interaction.user.mention} here it is",
                                               file=discord.File(io.BytesIO(IMAGE), "late.png"))

        @tree.command()
        async def panel(interaction: discord.Interaction) -> None:
            """Show a button."""
            await interaction.response.send_message("panel", view=HelloButton())

        @tree.command()
        @app_commands.choices(quality=[app_commands.Choice(name="fast", value="fast"),
                                       app_commands.Choice(name="best", value="best")])
        async def imagine(interaction: discord.Interaction, prompt: str, image: discord.Attachment | None = None,
                          style: str = "plain", quality: str = "fast") -> None:
            """Echo the prompt and the reference image's bytes."""
            if image is None:
                await interaction.response.send_message(f"{prompt}/{style}/{quality}")
                return
            data = await image.read()
            await interaction.response.send_message(
                f"{prompt}: {image.filename} {len(data)}B {image.width}x{image.height} "
                f"limit={interaction.filesize_limit}", file=discord.File(io.BytesIO(data), image.filename))

        @imagine.autocomplete("style")
        async def styles(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=s, value=s) for s in ("painting", "pastel", "photo") if
                    s.startswith(current)]

        @tree.command()
        async def whois(interaction: discord.Interaction, member: discord.Member, role: discord.Role,
                        where: discord.TextChannel) -> None:
            """Describe a member, a role and a channel."""
            caller = interaction.user
            assert isinstance(caller, discord.Member)
            await interaction.response.send_message(
                f"{member.name}:{[r.name for r in member.roles[1:]]} {role.name} #{where.name} "
                f"caller_manages={caller.guild_permissions.manage_guild}", ephemeral=True)

        @tree.context_menu(name="Describe")
        async def describe(interaction: discord.Interaction, message: discord.Message) -> None:
            await interaction.response.send_modal(DescribeModal(message))


@pytest.fixture
async def fake() -> AsyncIterator[StandardDiscord]:
    async with running_fake() as running:
        yield running


async def test_bot_logs_in_identifies_and_a_slash_command_round_trips(fake: StandardDiscord) -> None:
    async with start_bot(fake, StandInBot) as bot:
        guild = bot.get_guild(fake.guild.id)
        assert guild is not None and guild.get_channel(fake.general.id) is not None
        assert {r.name for r in guild.roles} >= {"@everyone", "Moderator", "Artist"}
        assert fake.identified_intents == discord.Intents.default().value
        assert {c["name"] for c in fake.commands} >= {"ping", "render", "imagine", "Describe"}

        interaction = await fake.slash("ping")
        reply = await interaction.wait_response()

    assert reply.content == "pong" and not reply.ephemeral and reply.via_webhook
    assert reply.interaction is interaction and fake.messages(fake.general) == [reply]
    # queued, then its frame handed to the socket, then answered
    assert interaction.sent_at is not None and interaction.callback is not None
    assert interaction.dispatched_at <= interaction.sent_at <= interaction.callback.at
    assert [(r.method, r.path) for r in fake.requests[:2]] == [("GET", "/users/@me"),
                                                              ("GET", "/oauth2/applications/@me")]
    assert fake.unhandled == []


async def test_gateway_zlib_stream_frames_are_understood() -> None:
    async with running_fake(gateway_compression=True) as fake, start_bot(fake, StandInBot):
        reply = await (await fake.slash("ping")).wait_response()
    assert fake.sessions[0].compressed and reply.content == "pong"


async def test_deferred_followup_carries_the_file_bytes_intact(fake: StandardDiscord) -> None:
    async with start_bot(fake, StandInBot):
        interaction = await fake.slash("render")
        reply = await interaction.wait_response()

    assert interaction.callback is not None and interaction.callback.type == 5
    # The first followup after a "thinking" defer replaces the placeholder message.
    assert fake.interaction_messages(interaction) == [reply] and reply.id == interaction.original_message_id
    assert reply.files == [("out0.png", IMAGE)]
    attachment = reply.attachments[0]
    assert (attachment.width, attachment.height) == (2, 3)
    async with aiohttp.ClientSession() as session, session.get(attachment.url) as response:
        assert await response.read() == IMAGE


async def test_more_than_ten_files_in_a_message_are_rejected(fake: StandardDiscord) -> None:
    async with start_bot(fake, StandInBot) as bot:
        interaction = await fake.slash("render", {"count": 11})
        rejection = await interaction.wait_rejection()
        await fake.wait_for(lambda: bot.errors)

    assert (rejection.status, rejection.code) == (400, 50035)
    assert isinstance(bot.errors[0], discord.HTTPException) and bot.errors[0].code == 50035
    assert interaction.messages == []


async def test_file_over_the_interaction_upload_limit_is_rejected_with_40005(fake: StandardDiscord) -> None:
    async with start_bot(fake, StandInBot) as bot:
        interaction = await fake.slash("render", {"size": 2048}, attachment_size_limit=1024)
        await fake.wait_for(lambda: bot.errors)

    assert isinstance(bot.errors[0], discord.HTTPException)
    assert (bot.errors[0].status, bot.errors[0].code) == (413, 40005)
    assert interaction.messages == []


async def test_content_over_2000_characters_is_rejected(fake: StandardDiscord) -> None:
    async with start_bot(fake, StandInBot):
        too_long = await fake.slash("echo", {"text": "x", "times": 2001})
        just_fits = await fake.slash("echo", {"text": "x", "times": 2000})
        rejection = await too_long.wait_rejection()
        fits = await just_fits.wait_response()

    assert (rejection.status, rejection.code) == (400, 50035)
    assert too_long.callback is None and len(fits.content) == 2000


async def test_callback_after_three_seconds_is_an_unknown_interaction(fake: StandardDiscord) -> None:
    async with start_bot(fake, StandInBot) as bot:
        interaction = await fake.slash("slow")
        fake.advance_clock(3.1)
        bot.gate.set()
        await fake.wait_for(lambda: bot.errors)

    assert isinstance(bot.errors[0], discord.NotFound) and bot.errors[0].code == 10062
    assert interaction.callback is None and interaction.messages == []


async def test_second_callback_for_one_interaction_is_rejected_with_40060(fake: StandardDiscord) -> None:
    # Two bot instances on one token both receive the interaction; only the first answer counts.
    async with start_bot(fake, StandInBot) as first, start_bot(fake, StandInBot) as second:
        await fake.wait_for(lambda: len([s for s in fake.sessions if s.identified]) == 2)
        interaction = await fake.slash("ping")
        rejection = await interaction.wait_rejection()
        await fake.wait_for(lambda: first.errors or second.errors)

    assert (rejection.status, rejection.code) == (400, 40060)
    assert [m.content for m in interaction.messages] == ["pong"]


async def test_old_interaction_token_fails_webhooks_while_channel_send_works(fake: StandardDiscord) -> None:
    async with start_bot(fake, StandInBot) as bot:
        interaction = await fake.slash("late", age=timedelta(minutes=15, seconds=1))
        fallback = await fake.wait_for_message(fake.general, lambda m: not m.via_webhook)

    error = bot.errors[0]
    assert isinstance(error, discord.HTTPException) and (error.status, error.code) == (401, 50027)
    assert fallback.files == [("late.png", IMAGE)] and fallback.mentioned_user_ids == [fake.alice.id]
    assert interaction.messages == []


async def test_rate_limited_followup_is_retried_when_the_429_has_a_via_header(fake: StandardDiscord) -> None:
    fake.fail_next("POST", r"^/webhooks/", 429)
    async with start_bot(fake, StandInBot):
        reply = await (await fake.slash("render")).wait_response()

    statuses = [r.status for r in fake.requests if r.method == "POST" and r.path.startswith("/webhooks/")]
    assert statuses == [429, 200]
    assert reply.files == [("out0.png", IMAGE)]


async def test_button_click_and_modal_submit_round_trip(fake: StandardDiscord) -> None:
    async with start_bot(fake, StandInBot):
        panel = await (await fake.slash("panel")).wait_response()
        click = await fake.click(panel, "panel:hello", user=fake.mod)
        hello = await click.wait_response()

        posted = await fake.user_message(fake.general, fake.alice, "look", attachments=[("cat.png", IMAGE)])
        opened = await fake.context_menu("Describe", posted)
        modal = (await opened.wait_callback()).data
        submitted = await fake.submit_modal(opened, {"prompt": "a cat in a hat"})
        answer = await submitted.wait_response()

    assert hello.content == "hello mod" and hello.ephemeral
    assert fake.messages(fake.general) == [panel, posted, answer]  # the ephemeral reply is not public
    assert modal["title"] == "Describe the image"
    assert answer.content == "a cat in a hat for cat.png"


async def test_slash_options_are_typed_from_the_synced_command_and_checked(fake: StandardDiscord) -> None:
    async with start_bot(fake, StandInBot):
        with_image = await fake.slash("imagine", {"prompt": "cat"}, attachments=[("ref.png", IMAGE, "image/png")])
        reply = await with_image.wait_response()
        choices = await fake.autocomplete("imagine", {"prompt": "cat", "style": "pa"}, focused="style")
        with pytest.raises(ValueError, match="requires option 'prompt'"):
            await fake.slash("imagine", {})
        with pytest.raises(ValueError, match="must be one of"):
            await fake.slash("imagine", {"prompt": "cat", "quality": "ultra"})

    assert reply.content == f"cat: ref.png {len(IMAGE)}B 2x3 limit={10 * 2**20}"
    assert reply.files == [("ref.png", IMAGE)]
    options = with_image.payload["data"]["options"]
    assert [(o["name"], o["type"]) for o in options] == [("prompt", 3), ("image", 11)]
    assert [c["value"] for c in choices] == ["painting", "pastel"]


async def test_message_content_is_hidden_without_the_intent_unless_the_bot_is_mentioned(
        fake: StandardDiscord) -> None:
    async with start_bot(fake, StandInBot) as bot:
        plain = await fake.user_message(fake.general, fake.alice, "just chatting", attachments=[("a.png", IMAGE)])
        mention = await fake.user_message(fake.general, fake.alice, f"{fake.bot_user.mention} draw a cat")
        pong = await (await fake.slash("ping")).wait_response()
        reply_to_webhook = await fake.user_message(fake.general, fake.alice, "again", reply_to=pong)
        await fake.wait_for(lambda: len(bot.seen) == 3)

    seen = {m.id: m for m in bot.seen}
    assert seen[plain.id].content == "" and seen[plain.id].attachments == []
    assert seen[mention.id].content == f"{fake.bot_user.mention} draw a cat"
    # A reply to an interaction (webhook) message does not mention the bot (api-docs #5395).
    assert seen[reply_to_webhook.id].content == ""


async def test_message_content_is_visible_with_the_intent(fake: StandardDiscord) -> None:
    intents = discord.Intents.default()
    intents.message_content = True
    async with start_bot(fake, lambda s: StandInBot(s, intents=intents)) as bot:
        sent = await fake.user_message(fake.general, fake.alice, "hello there")
        await fake.wait_for(lambda: bot.seen)

    assert fake.identified_intents is not None and fake.identified_intents & (1 << 15)
    assert bot.seen[0].id == sent.id and bot.seen[0].content == "hello there"


async def test_a_new_bot_after_restart_sees_the_earlier_messages(fake: StandardDiscord) -> None:
    async with start_bot(fake, StandInBot):
        first = await (await fake.slash("ping")).wait_response()

    async with start_bot(fake, StandInBot) as restarted:
        channel = restarted.get_channel(fake.general.id)
        assert isinstance(channel, discord.TextChannel)
        history = [m async for m in channel.history()]
        second = await (await fake.slash("ping")).wait_response()

    assert [m.id for m in history] == [first.id]
    assert second.content == "pong" and len([s for s in fake.sessions if s.identify]) == 2


async def test_unknown_routes_answer_404_and_are_recorded(fake: StandardDiscord) -> None:
    async with start_bot(fake, StandInBot) as bot:
        with pytest.raises(discord.NotFound):
            await bot.http.request(discord.http.Route("GET", "/guilds/{guild_id}/preview", guild_id=fake.guild.id))

    assert [(r.method, r.path) for r in fake.unhandled] == [("GET", f"/guilds/{fake.guild.id}/preview")]


async def test_user_role_and_channel_options_resolve_to_cached_objects(fake: StandardDiscord) -> None:
    async with start_bot(fake, StandInBot):
        interaction = await fake.slash("whois", {"member": fake.alice, "role": fake.artist, "where": fake.general},
                                       user=fake.mod)
        reply = await interaction.wait_response()

    assert reply.content == "alice:['Artist'] Artist #general caller_manages=True" and reply.ephemeral
    assert [o["type"] for o in interaction.payload["data"]["options"]] == [6, 8, 7]


async def test_channel_uploads_follow_the_guild_boost_tier_and_permissions(fake: StandardDiscord) -> None:
    just_over = b"\x00" * (10 * 2**20 + 1)
    async with start_bot(fake, StandInBot) as bot:
        channel = bot.get_channel(fake.general.id)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as too_big:
            await channel.send(file=discord.File(io.BytesIO(just_over), "big.bin"))
        fake.guild.premium_tier = 2  # 50 MiB per file
        sent = await channel.send(file=discord.File(io.BytesIO(just_over), "big.bin"))

        bot_role = fake.guild.members[fake.bot_user.id].role_ids[0]
        fake.general.overwrites.append({"id": str(bot_role), "type": 0, "allow": "0", "deny": str(1 << 15)})
        with pytest.raises(discord.Forbidden) as no_attach:
            await channel.send(file=discord.File(io.BytesIO(IMAGE), "a.png"))
        await channel.send("text still works")

    assert (too_big.value.status, too_big.value.code) == (413, 40005)
    assert fake.messages(fake.general)[0].files == [("big.bin", just_over)] and sent.attachments
    assert no_attach.value.code == 50013
    assert [m.content for m in fake.messages(fake.general)] == ["", "text still works"]


async def test_bot_can_open_a_dm_and_write_there(fake: StandardDiscord) -> None:
    async with start_bot(fake, StandInBot) as bot:
        user = await bot.fetch_user(fake.alice.id)
        await user.send("your image is ready")

    [dm] = fake.messages(fake.dm_channel(fake.alice))
    assert dm.content == "your image is ready" and dm.guild_id is None
    assert fake.internal_errors == [] and fake.unhandled == []
