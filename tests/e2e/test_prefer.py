"""/prefer end to end: a member's own defaults, stored across servers, and what wins over them."""

from __future__ import annotations

from tests.e2e.conftest import BotStarter, World
from tests.e2e.test_imagine_errors import FLAG_EPHEMERAL
from tests.e2e.test_references import RED, finished
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord


async def prefer(world: World, **options) -> str:
    interaction = await world.discord.slash("prefer", options)
    callback = await interaction.wait_callback()
    assert callback.data["flags"] & FLAG_EPHEMERAL
    return str(callback.data["content"])


async def relay_body(world: World, index: int = -1, **options) -> dict:
    interaction = await world.imagine(prompt=options.pop("prompt", "a lighthouse"), **options)
    summary = await finished(interaction)
    assert summary.content.startswith("✅"), summary.content
    return world.relay.requests[index].body


async def test_prefer_stores_shows_and_clears_a_members_defaults(world: World):
    shown = await prefer(world)
    assert "size: the server's (2K)" in shown and "watermark: the server's (off)" in shown

    saved = await prefer(world, size="4k", count=2, watermark=True)
    assert saved.startswith("✅ Saved") and "size: **4K**" in saved and "count: **2**" in saved
    assert "watermark: **on**" in saved
    changed = await prefer(world, count=3)  # only what is given changes
    assert "size: **4K**" in changed and "count: **3**" in changed and "watermark: **on**" in changed
    assert "count: **3**" in await prefer(world)

    cleared = await prefer(world, clear=True)
    assert "cleared" in cleared and "size: the server's (2K)" in cleared
    assert "size: the server's (2K)" in await prefer(world)


async def test_member_defaults_apply_below_flags_and_slash_options(world: World):
    await prefer(world, size="1K", count=2, watermark=True)

    body = await relay_body(world)
    assert (body["size"], body["watermark"], body["sequential_image_generation_options"]) == (
        "1K", True, {"max_images": 2})
    flagged = await relay_body(world, prompt="a lighthouse --4k --no-watermark --n 3")
    assert (flagged["size"], flagged["watermark"], flagged["sequential_image_generation_options"]) == (
        "4K", False, {"max_images": 3})
    assert flagged["prompt"] == "a lighthouse"
    explicit = await relay_body(world, prompt="a lighthouse --4k --n 3", size="2K", count=1)
    assert explicit["size"] == "2K" and "sequential_image_generation_options" not in explicit
    reshaped = await relay_body(world, prompt="a lighthouse --ar 16:9")
    assert reshaped["size"] == "1360x768"  # the member's 1K, shaped 16:9


async def test_another_members_defaults_do_not_apply(world: World):
    await prefer(world, size="1K")
    interaction = await world.discord.slash("imagine", {"prompt": "a lighthouse"}, user=world.discord.mod)
    await finished(interaction)
    assert world.relay.requests[0].body["size"] == "2K"


async def test_defaults_apply_to_edits_too(world: World):
    fake = world.discord
    await prefer(world, size="1K")
    upload = await fake.user_message(fake.general, fake.mod, "cat", attachments=[("cat.png", RED)])
    opened = await fake.context_menu("Edit with Seedream", upload)
    modal = (await opened.wait_callback()).data
    assert "(default 1K)" in str(modal)  # the form shows the member's default size
    submitted = await fake.submit_modal(opened, {"prompt": "add a hat"})
    await finished(submitted)
    assert world.relay.requests[0].body["size"] == "1K"


async def test_clear_with_other_options_is_refused_and_changes_nothing(world: World):
    await prefer(world, size="1K")
    refused = await prefer(world, clear=True, size="4K")
    assert "on its own" in refused
    assert "size: **1K**" in await prefer(world)


async def test_a_bad_size_is_refused_privately(world: World):
    assert "couldn't read `huge`" in await prefer(world, size="huge")
    assert "size: the server's" in await prefer(world)


async def test_defaults_survive_a_restart_and_follow_the_member_across_servers(
        boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay, database_url: str):
    other = fake_discord.add_guild("Second Server", owner=fake_discord.owner)
    channel = fake_discord.add_channel(other, "art")
    fake_discord.add_member(other, fake_discord.owner)
    fake_discord.add_member(other, fake_discord.alice)
    async with boot() as bot:
        world = World(fake_discord, relay, bot, database_url)
        await prefer(world, size="1K")
    async with boot():
        interaction = await fake_discord.slash("imagine", {"prompt": "a lighthouse"}, channel=channel)
        await finished(interaction)
    assert relay.requests[0].body["size"] == "1K"
