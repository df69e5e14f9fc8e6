"""/quota end to end: the real bot and ledger against the fake Discord and the fake relay.

The guild here adds to the standard one: a #mod-log channel, and a "Quota Helper" role (no
permissions) held by the member `helper`, for the configured-moderator-role path.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.core.quota import LedgerKind
from bot.storage.database import Database
from tests.conftest import POSTGRES_URL, require_postgres
from tests.e2e.conftest import BotStarter
from tests.fakes.fake_relay import FakeRelay, ark_error
from tests.harness import StandardDiscord, idle, running_fake

if TYPE_CHECKING:
    from tests.fakes.discord_state import Channel, FakeInteraction, Role, StoredMessage, User


@dataclass
class Extras:
    mod_log: Channel
    helpers: Role
    helper: User


@pytest.fixture
async def fake_discord() -> AsyncIterator[StandardDiscord]:
    async with running_fake() as fake:
        fake.extras = Extras(  # type: ignore[attr-defined]
            mod_log=fake.add_channel(fake.guild, "mod-log"),
            helpers=(helpers := fake.add_role(fake.guild, "Quota Helper")),
            helper=(helper := fake.add_user("helper")),
        )
        fake.add_member(fake.guild, helper, roles=[helpers])
        yield fake


@pytest.fixture
def extras(fake_discord: StandardDiscord) -> Extras:
    return fake_discord.extras  # type: ignore[attr-defined,no-any-return]


# --- PostgreSQL: the bot's DATABASE_URL cannot carry a search_path, so a test gets a database. ---

@contextlib.asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database on the test server, dropped afterwards; yields its URL."""
    require_postgres()
    name = f"q_{uuid.uuid4().hex[:16]}"
    admin = Database(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.engine.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.close()


@pytest.fixture
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """SQLite by default; `@pytest.mark.parametrize("database_url", [...], indirect=True)` picks the backend."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


# --- acting and reading -----------------------------------------------------------------------

async def quota(fake: StandardDiscord, subcommand: str, by: User, /, **options: Any) -> StoredMessage:
    """Member `by` runs `/quota show` or `/quota-admin <subcommand>` with `options`; returns the bot's
    answer (which must be ephemeral)."""
    command = "quota" if subcommand == "show" else "quota-admin"
    interaction = await fake.slash(command, options, subcommand=subcommand, user=by)
    answer = await interaction.wait_response()
    assert answer.ephemeral, f"/{command} {subcommand} answered publicly: {answer.content!r}"
    return answer


async def imagine(fake: StandardDiscord, user: User | None = None, **options: Any) -> FakeInteraction:
    options.setdefault("prompt", "a lighthouse at dusk")
    return await fake.slash("imagine", options, user=user)


async def finished(interaction: FakeInteraction) -> StoredMessage:
    """The progress message once it shows the job's final summary."""
    def done() -> StoredMessage | None:
        original = next((m for m in interaction.messages if m.id == interaction.original_message_id), None)
        return original if original and original.content.startswith(("✅", "❌")) else None

    return await interaction.waiter.wait_for(done, 15.0, what="the job's final summary")


async def refusal(interaction: FakeInteraction) -> str:
    """The private answer to an /imagine refused before anything was queued: the public "thinking…"
    placeholder is deleted and an ephemeral followup carries the reason. Read from the followup the
    bot sent, because the fake writes a followup after a deleted placeholder into that placeholder."""
    fake = interaction.waiter

    def followup() -> Any:
        return next((r for r in fake.requests  # type: ignore[attr-defined]
                     if r.interaction is interaction and r.method == "POST" and r.path.startswith("/webhooks/")
                     and r.status == 200), None)

    request = await fake.wait_for(followup, 10.0, what="a private answer to /imagine")
    assert request.payload["flags"] & EPHEMERAL
    assert not [m for m in interaction.messages if not m.ephemeral]
    return str(request.payload["content"])


def fields(message: StoredMessage) -> dict[str, str]:
    return {field["name"]: field["value"] for field in message.embeds[0]["fields"]}


def assert_no_pings(message: StoredMessage) -> None:
    assert message.mentions == [] and message.mention_role_ids == []
    assert message.allowed_mentions is not None and message.allowed_mentions.get("parse") == []


EPHEMERAL = 1 << 6
TIMESTAMP = re.compile(r"<t:(\d+):R> \(\d{4}-\d\d-\d\d 00:00 UTC\)")


# --- hitting the limit and moderators raising it ------------------------------------------------

@pytest.mark.parametrize("database_url", BACKENDS, indirect=True)
async def test_member_at_limit_is_refused_until_a_moderator_raises_it_and_numbers_survive_restart(
        boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay, database_url: str):
    alice, mod = fake_discord.alice, fake_discord.mod
    async with boot(quota_default_limit=2):
        first = await imagine(fake_discord, count=2)
        await finished(first)
        assert len(relay.requests) == 1

        refused = await refusal(await imagine(fake_discord))
        assert "You have used your 2 images" in refused
        assert TIMESTAMP.search(refused), refused
        assert len(relay.requests) == 1  # nothing reached the relay

        answer = await quota(fake_discord, "set", mod, user=alice, limit=5)
        assert f"Set <@{alice.id}>'s limit to **5 images per day** (was 2 images per day)" in answer.content
        assert f"<@{alice.id}> has used 2 of 5 images today: **3** left" in answer.content
        assert_no_pings(answer)

        await finished(await imagine(fake_discord, count=3))
        assert len(relay.requests) == 2

    async with boot(quota_default_limit=2):
        shown = await quota(fake_discord, "show", alice)
        numbers = fields(shown)
        assert numbers["Used today"] == "5 images"
        assert numbers["Remaining"] == "0 images"
        assert numbers["Limit"] == "5 images per day\nset for this member by a moderator"
        assert "UTC" in numbers["Resets"] and ":F>" in numbers["Resets"] and ":R>" in numbers["Resets"]
        assert numbers["Jobs"] == "none"
        refused = await refusal(await imagine(fake_discord))
        assert "You have used your 5 images" in refused
        assert len(relay.requests) == 2


async def test_result_embed_shows_the_requesters_remaining_images(boot: BotStarter, fake_discord: StandardDiscord):
    async with boot(quota_default_limit=10):
        interaction = await imagine(fake_discord, count=3)
        await finished(interaction)
    posted = [m for m in interaction.messages if m.files]  # a set is posted as its images arrive
    assert sum(len(m.files) for m in posted) == 3
    assert {fields(m)["Quota"] for m in posted} == {"7 images left today"}


async def test_non_moderator_set_is_refused_privately_and_changes_nothing(
        boot: BotStarter, fake_discord: StandardDiscord):
    alice = fake_discord.alice
    async with boot(quota_default_limit=2) as bot:
        answer = await quota(fake_discord, "set", alice, user=alice, limit=1000)
        assert "Only moderators can change quotas" in answer.content
        assert "Nothing was changed" in answer.content

        status = await bot.quota.status(fake_discord.guild.id, alice.id, [fake_discord.artist.id])
        assert status.limit == 2 and status.source == "global"
        assert await bot.quota.audit_log(fake_discord.guild.id) == []


async def test_non_moderator_cannot_see_another_members_quota(boot: BotStarter, fake_discord: StandardDiscord):
    async with boot():
        answer = await quota(fake_discord, "show", fake_discord.alice, user=fake_discord.mod)
    assert "Only moderators can see another member's quota" in answer.content
    assert not answer.embeds


async def test_moderator_sees_any_members_quota(boot: BotStarter, fake_discord: StandardDiscord):
    alice, mod = fake_discord.alice, fake_discord.mod
    async with boot(quota_default_limit=4) as bot:
        await finished(await imagine(fake_discord, count=1))
        await idle(bot.jobs)  # the charge commits a moment after the result shows
        answer = await quota(fake_discord, "show", mod, user=alice)
    numbers = fields(answer)
    assert numbers["Used today"] == "1 image" and numbers["Remaining"] == "3 images"
    assert numbers["Limit"] == "4 images per day\nthe bot's default"
    assert f"<@{alice.id}>" in answer.embeds[0]["description"]
    assert_no_pings(answer)


async def test_show_lists_the_members_running_jobs(boot: BotStarter, fake_discord: StandardDiscord,
                                                   relay: FakeRelay):
    relay.latency = 1.0
    async with boot(quota_default_limit=10) as bot:
        interaction = await imagine(fake_discord, count=2)
        await fake_discord.wait_for(lambda: bot.runner.running or None, what="the job to start")
        numbers = fields(await quota(fake_discord, "show", fake_discord.alice))
        await finished(interaction)
    assert numbers["Jobs"].startswith("1 running, 0 queued: `")
    assert numbers["Held by unfinished jobs"] == "2 images"
    assert numbers["Remaining"] == "8 images"


# --- who may moderate ---------------------------------------------------------------------------

async def test_member_with_the_configured_moderator_role_may_moderate(
        boot: BotStarter, fake_discord: StandardDiscord, extras: Extras):
    alice, helper = fake_discord.alice, extras.helper
    async with boot(quota_default_limit=1) as bot:
        refused = await quota(fake_discord, "grant", helper, user=alice, amount=3)
        assert "Only moderators" in refused.content

        set_role = await quota(fake_discord, "moderator-role", fake_discord.mod, role=extras.helpers)
        assert f"Members with <@&{extras.helpers.id}> may now moderate quotas" in set_role.content

        granted = await quota(fake_discord, "grant", helper, user=alice, amount=3)
        assert f"Granted <@{alice.id}> **3 images** extra today" in granted.content
        status = await bot.quota.status(fake_discord.guild.id, alice.id, [fake_discord.artist.id])
        assert status.granted == 3 and status.remaining == 4


async def test_only_manage_server_may_choose_the_moderator_role(
        boot: BotStarter, fake_discord: StandardDiscord, extras: Extras):
    async with boot() as bot:
        await quota(fake_discord, "moderator-role", fake_discord.mod, role=extras.helpers)
        refused = await quota(fake_discord, "moderator-role", extras.helper, role=fake_discord.artist)
        assert "Only members with the Manage Server permission" in refused.content
        settings = await bot.quota.guild_settings(fake_discord.guild.id)
    assert settings.moderator_role_id == extras.helpers.id


# --- the audit channel --------------------------------------------------------------------------

async def test_audit_channel_receives_each_moderator_action_with_who_what_and_why(
        boot: BotStarter, fake_discord: StandardDiscord, extras: Extras):
    alice, mod = fake_discord.alice, fake_discord.mod
    async with boot(quota_default_limit=2):
        answer = await quota(fake_discord, "audit-channel", mod, channel=extras.mod_log)
        assert f"now posted to <#{extras.mod_log.id}>" in answer.content
        await quota(fake_discord, "set", mod, user=alice, limit=9, reason="art contest this week")
        await quota(fake_discord, "block", mod, user=alice, reason="spam")

        def audit_posts() -> list[StoredMessage] | None:
            posts = fake_discord.messages(extras.mod_log)
            return posts if len(posts) >= 3 else None

        moved, set_limit, block = await fake_discord.wait_for(audit_posts, what="three audit posts")
    assert [m.embeds[0]["title"] for m in (moved, set_limit, block)] == [
        "/quota-admin audit-channel", "/quota-admin set", "/quota-admin block"]
    embed = set_limit.embeds[0]
    assert embed["description"] == f"Set <@{alice.id}>'s limit to **9 images per day** (was 2 images per day)."
    audit = {field["name"]: field["value"] for field in embed["fields"]}
    assert audit["Moderator"] == f"<@{mod.id}>"
    assert audit["Reason"] == "art contest this week"
    assert block.embeds[0]["description"].startswith(f"Blocked <@{alice.id}>")
    for post in (moved, set_limit, block):
        assert_no_pings(post)
    assert not [m for m in fake_discord.messages(fake_discord.general) if not m.interaction]


async def test_refused_action_is_not_posted_to_the_audit_channel(
        boot: BotStarter, fake_discord: StandardDiscord, extras: Extras):
    async with boot():
        await quota(fake_discord, "audit-channel", fake_discord.mod, channel=extras.mod_log)
        await fake_discord.wait_for_message(extras.mod_log)
        await quota(fake_discord, "reset", fake_discord.alice, user=fake_discord.alice)
        await quota(fake_discord, "show", fake_discord.alice)  # a later answer: the refusal is settled
    assert len(fake_discord.messages(extras.mod_log)) == 1


async def test_moderator_is_told_when_the_audit_channel_cannot_be_posted_to(
        boot: BotStarter, fake_discord: StandardDiscord, extras: Extras):
    async with boot():
        await quota(fake_discord, "audit-channel", fake_discord.mod, channel=extras.mod_log)
        fake_discord.fail_next("POST", rf"^/channels/{extras.mod_log.id}/messages", 403,
                               {"message": "Missing Permissions", "code": 50013})
        answer = await quota(fake_discord, "grant", fake_discord.mod, user=fake_discord.alice, amount=1)
    assert answer.content.startswith("✅ Granted")
    assert f"I could not post this to the audit channel <#{extras.mod_log.id}>" in answer.content


# --- each moderator command ---------------------------------------------------------------------

async def test_grant_lets_an_exhausted_member_generate_again(boot: BotStarter, fake_discord: StandardDiscord,
                                                             relay: FakeRelay):
    async with boot(quota_default_limit=1):
        await finished(await imagine(fake_discord))
        await refusal(await imagine(fake_discord, count=2))
        await quota(fake_discord, "grant", fake_discord.mod, user=fake_discord.alice, amount=2)
        await finished(await imagine(fake_discord, count=2))
        shown = fields(await quota(fake_discord, "show", fake_discord.alice))
    assert len(relay.requests) == 2
    assert shown["Extra today"] == "+2 images granted by moderators"
    assert shown["Used today"] == "3 images" and shown["Remaining"] == "0 images"


async def test_reset_forgives_the_members_usage(boot: BotStarter, fake_discord: StandardDiscord):
    async with boot(quota_default_limit=2):
        await finished(await imagine(fake_discord, count=2))
        answer = await quota(fake_discord, "reset", fake_discord.mod, user=fake_discord.alice)
        assert "(2 images forgiven" in answer.content
        await finished(await imagine(fake_discord, count=2))


async def test_blocked_member_is_refused_and_unblocked_member_proceeds(
        boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay):
    async with boot(quota_default_limit=10):
        await quota(fake_discord, "block", fake_discord.mod, user=fake_discord.alice)
        refused = await refusal(await imagine(fake_discord))
        assert "A moderator has paused image generation for you" in refused
        assert fields(await quota(fake_discord, "show", fake_discord.alice))["Limit"] == (
            "0 (blocked)\nblocked by a moderator")
        assert relay.requests == []

        answer = await quota(fake_discord, "unblock", fake_discord.mod, user=fake_discord.alice)
        assert answer.content.startswith(f"✅ Unblocked <@{fake_discord.alice.id}>.")
        await finished(await imagine(fake_discord))
    assert len(relay.requests) == 1


async def test_server_cap_pauses_everyone_until_raised(boot: BotStarter, fake_discord: StandardDiscord,
                                                      relay: FakeRelay):
    async with boot(quota_default_limit=10):
        answer = await quota(fake_discord, "server-cap", fake_discord.mod, images=1)
        assert "Set the server's monthly cap to **1 image** (was no cap); 0 used this month" in answer.content
        await finished(await imagine(fake_discord))
        refused = await refusal(await imagine(fake_discord, user=fake_discord.mod))
        assert "This server has used its 1 image for this month" in refused
        assert "UTC" in refused
        assert len(relay.requests) == 1

        await quota(fake_discord, "server-cap", fake_discord.mod)  # empty: no cap
        await finished(await imagine(fake_discord, user=fake_discord.mod))
    assert len(relay.requests) == 2


async def test_role_limit_applies_to_its_members_and_can_be_removed(
        boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay):
    artist = fake_discord.artist
    async with boot(quota_default_limit=1):
        answer = await quota(fake_discord, "role", fake_discord.mod, role=artist, limit=4)
        assert f"Set the limit of <@&{artist.id}> to **4 images per day** (was no limit of its own)" \
            in answer.content
        assert fields(await quota(fake_discord, "show", fake_discord.alice))["Limit"] == (
            f"4 images per day\nfrom role <@&{artist.id}>")
        await finished(await imagine(fake_discord, count=3))

        answer = await quota(fake_discord, "role", fake_discord.mod, role=artist)  # no limit: remove
        assert f"Removed the limit of <@&{artist.id}> (was 4 images per day)" in answer.content
        refused = await refusal(await imagine(fake_discord))
        assert "You have used your 1 image" in refused
    assert len(relay.requests) == 1


async def test_everyone_role_is_not_a_quota_role(boot: BotStarter, fake_discord: StandardDiscord):
    async with boot() as bot:
        answer = await quota(fake_discord, "role", fake_discord.mod, role=fake_discord.everyone, limit=3)
        assert "use `/quota-admin default`" in answer.content
        assert (await bot.quota.guild_settings(fake_discord.guild.id)).role_limits == {}


async def test_exempt_role_toggles_unlimited_generation(boot: BotStarter, fake_discord: StandardDiscord,
                                                       relay: FakeRelay):
    artist = fake_discord.artist
    async with boot(quota_default_limit=1):
        answer = await quota(fake_discord, "exempt", fake_discord.mod, role=artist)
        assert f"<@&{artist.id}> is now **exempt**" in answer.content
        await finished(await imagine(fake_discord, count=3))
        shown = await quota(fake_discord, "show", fake_discord.alice)
        assert "**Unlimited** images." in shown.embeds[0]["description"]
        assert fields(shown)["Limit"] == f"unlimited\nexempt role <@&{artist.id}>"

        answer = await quota(fake_discord, "exempt", fake_discord.mod, role=artist)  # toggles back
        assert f"<@&{artist.id}> is **no longer exempt**" in answer.content
        await refusal(await imagine(fake_discord))
        answer = await quota(fake_discord, "exempt", fake_discord.mod, role=artist, exempt=False)
        assert "(was not exempt)" in answer.content
    assert len(relay.requests) == 1


async def test_server_default_sets_limit_and_period(boot: BotStarter, fake_discord: StandardDiscord):
    async with boot(quota_default_limit=1) as bot:
        answer = await quota(fake_discord, "default", fake_discord.mod, limit=3, period="weekly")
        assert "Set this server's default to **3 images per week** (was 1 image per day)" in answer.content
        await finished(await imagine(fake_discord, count=3))
        shown = fields(await quota(fake_discord, "show", fake_discord.alice))
        assert shown["Used this week"] == "3 images"
        assert shown["Limit"] == "3 images per week\nthis server's default"
        status = await bot.quota.status(fake_discord.guild.id, fake_discord.alice.id, [])
        assert status.resets_at.weekday() == 0  # next Monday, 00:00 UTC
        assert f"<t:{int(status.resets_at.timestamp())}:F>" in shown["Resets"]

        await quota(fake_discord, "default", fake_discord.mod, limit=5)  # period kept
        settings = await bot.quota.guild_settings(fake_discord.guild.id)
    assert settings.default_limit == 5 and settings.period == "weekly"


# --- the ledger follows what the relay delivered -------------------------------------------------

async def test_relay_failure_leaves_usage_unchanged(boot: BotStarter, fake_discord: StandardDiscord,
                                                    relay: FakeRelay):
    relay.fail_next(500, ark_error("InternalServiceError", "The service encountered an unexpected error."))
    async with boot(quota_default_limit=5) as bot:
        summary = await finished(await imagine(fake_discord, count=3))
        assert summary.content.startswith("❌")
        shown = fields(await quota(fake_discord, "show", fake_discord.alice))
        [entry, *_] = await bot.quota.history(fake_discord.guild.id, fake_discord.alice.id)
    assert shown["Used today"] == "0 images" and shown["Remaining"] == "5 images"
    assert entry.kind is LedgerKind.RELEASE and entry.amount == 3


@pytest.mark.parametrize("setup", ["fewer_returned", "one_image_failed"])
async def test_partial_set_charges_only_delivered_images(boot: BotStarter, fake_discord: StandardDiscord,
                                                         relay: FakeRelay, setup: str):
    if setup == "fewer_returned":
        relay.produce = 2
    else:
        relay.image_errors = {1: "OutputImageSensitiveContentDetected", 3: "OutputImageSensitiveContentDetected"}
    async with boot(quota_default_limit=10):
        interaction = await imagine(fake_discord, count=4)
        await finished(interaction)
        shown = fields(await quota(fake_discord, "show", fake_discord.alice))
    delivered = sum(len(m.files) for m in interaction.messages)
    assert delivered == 2
    assert shown["Used today"] == "2 images" and shown["Remaining"] == "8 images"


# --- the command as Discord sees it --------------------------------------------------------------

async def test_quota_shows_to_everyone_and_quota_admin_defaults_to_manage_server(
        boot: BotStarter, fake_discord: StandardDiscord):
    async with boot():
        quota_command, admin = fake_discord.command("quota"), fake_discord.command("quota-admin")
    assert quota_command is not None and admin is not None
    assert quota_command.get("default_member_permissions") is None  # visible: /quota show is for everyone
    assert [option["name"] for option in quota_command["options"]] == ["show"]
    assert admin["default_member_permissions"] == "32"  # Manage Server; servers may grant it to a role
    assert quota_command.get("contexts") == [0] and admin.get("contexts") == [0]  # servers only
    names = {option["name"] for option in admin["options"]}
    assert names == {"set", "reset", "grant", "default", "role", "exempt", "block", "unblock",
                     "server-cap", "audit-channel", "moderator-role"}
