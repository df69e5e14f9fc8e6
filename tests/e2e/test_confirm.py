"""The confirm step for big spends, end to end: nothing is reserved or sent until Generate."""

from __future__ import annotations

from tests.e2e.conftest import BotStarter, World
from tests.e2e.test_references import GREEN, RED, finished, reply_answer, reply_result
from tests.e2e.test_results import button, image_messages
from tests.fakes.discord_state import FLAG_EPHEMERAL, FakeInteraction, StoredMessage
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord


async def question(interaction: FakeInteraction) -> StoredMessage:
    """The private Generate / Cancel question the bot answered `interaction` with."""
    message = await interaction.wait_response()
    assert message.ephemeral and message.flags & FLAG_EPHEMERAL
    assert [c["label"] for c in _buttons(message)] == ["Generate", "Cancel"]
    return message


def _buttons(message: StoredMessage) -> list[dict]:
    return [c for row in message.components for c in row.get("components", []) if c.get("type") == 2]


def custom_id(message: StoredMessage, label: str) -> str:
    return next(str(c["custom_id"]) for c in _buttons(message) if c["label"] == label)


async def nothing_reserved(world: World) -> None:
    fake = world.discord
    status = await world.bot.quota.status(fake.guild.id, fake.alice.id, [fake.artist.id])
    assert (status.used, status.reserved) == (0, 0)
    assert await world.bot.jobs.active_for_user(fake.alice.id, fake.guild.id) == []


async def test_a_big_request_asks_first_and_generate_runs_it(world: World):
    interaction = await world.imagine(prompt="a storyboard of a heist", count=8)
    asked = await question(interaction)

    assert "**8 images**" in asked.content and "**25 images** left" in asked.content
    assert world.relay.requests == []
    await nothing_reserved(world)
    click = await world.discord.click(asked, custom_id(asked, "Generate"))
    summary = await finished(click)

    assert summary.content.startswith("✅"), summary.content
    [request] = world.relay.requests
    assert request.body["sequential_image_generation_options"] == {"max_images": 8}
    assert sum(len(m.files) for m in image_messages(click)) == 8
    assert not any(m.ephemeral for m in image_messages(click))  # the results are public
    await world.discord.wait_for(lambda: asked.content.startswith("Started") and not asked.components,
                                 10, what="the question to say it started")


async def test_cancel_leaves_no_trace(world: World):
    interaction = await world.imagine(prompt="a storyboard", count=10)
    asked = await question(interaction)
    click = await world.discord.click(asked, custom_id(asked, "Cancel"))
    await click.wait_callback()

    await world.discord.wait_for(lambda: asked.content.startswith("Cancelled") and not asked.components,
                                 10, what="the question to say it was cancelled")
    assert world.relay.requests == []
    await nothing_reserved(world)
    assert world.discord.messages(world.discord.general) == []


async def test_silence_until_the_timeout_leaves_no_trace(boot: BotStarter, fake_discord: StandardDiscord,
                                                          relay: FakeRelay, database_url: str):
    async with boot(confirm_timeout_seconds=0.3) as bot:
        world = World(fake_discord, relay, bot, database_url)
        interaction = await world.imagine(prompt="a storyboard", count=9)
        asked = await question(interaction)
        await fake_discord.wait_for(lambda: asked.deleted, 10, what="the unanswered question to be deleted")
        await nothing_reserved(world)
    assert relay.requests == []


async def test_below_the_threshold_nothing_is_asked(world: World):
    interaction = await world.imagine(prompt="two takes", count=7)
    summary = await finished(interaction)
    assert summary.content.startswith("✅") and not summary.ephemeral


async def test_zero_turns_the_step_off(boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay):
    async with boot(confirm_at_images=0):
        interaction = await fake_discord.slash("imagine", {"prompt": "a storyboard", "count": 15})
        summary = await finished(interaction)
    assert summary.content.startswith("✅")


async def test_a_flag_count_is_confirmed_too(world: World):
    interaction = await world.imagine(prompt="a storyboard --n 12")
    asked = await question(interaction)
    assert "**12 images**" in asked.content and world.relay.requests == []


async def test_blend_goes_through_the_step(world: World):
    interaction = await world.discord.slash("blend", {"prompt": "together", "count": 8,
                                                      "image1": ("a.png", RED), "image2": ("b.png", GREEN)})
    asked = await question(interaction)
    click = await world.discord.click(asked, custom_id(asked, "Generate"))
    await finished(click)
    assert len(world.relay.requests) == 1


async def test_reroll_of_a_big_set_asks_again(boot: BotStarter, fake_discord: StandardDiscord,
                                              relay: FakeRelay, database_url: str):
    async with boot(confirm_at_images=3):
        small = await fake_discord.slash("imagine", {"prompt": "a pair", "count": 2})
        await finished(small)  # below the threshold: no question, and neither for its Reroll
        pair = image_messages(small)[0]
        await finished(await fake_discord.click(pair, button(pair, "reroll")))

        big = await fake_discord.slash("imagine", {"prompt": "a set", "count": 3})
        asked = await question(big)
        generated = await fake_discord.click(asked, custom_id(asked, "Generate"))
        await finished(generated)
        result = image_messages(generated)[0]
        reroll = await fake_discord.click(result, button(result, "reroll"))
        asked_again = await question(reroll)
        assert "**3 images**" in asked_again.content and len(relay.requests) == 3
        again = await fake_discord.click(asked_again, custom_id(asked_again, "Generate"))
        await finished(again)
    assert len(relay.requests) == 4
    assert relay.requests[3].body["prompt"] == "a set"


async def test_a_big_reply_edit_asks_in_a_reply_only_its_author_can_answer(world: World):
    fake = world.discord
    upload = await fake.user_message(fake.general, fake.mod, "cat", attachments=[("cat.png", RED)])
    reply = await fake.user_message(fake.general, fake.alice, f"{fake.bot_user.mention} hats --n 8",
                                    reply_to=upload)
    asked = await reply_answer(fake, reply)
    assert "**8 images**" in asked.content and [c["label"] for c in _buttons(asked)] == ["Generate", "Cancel"]
    assert world.relay.requests == []

    intruder = await fake.click(asked, custom_id(asked, "Generate"), user=fake.mod)
    refused = await intruder.wait_callback()
    assert refused.data["flags"] & FLAG_EPHEMERAL and "Only <@" in refused.data["content"]
    assert world.relay.requests == []
    await nothing_reserved(world)

    await fake.click(asked, custom_id(asked, "Generate"))
    images, status = await reply_result(fake, reply)
    assert status.content.startswith("✅") and images.files
    [request] = world.relay.requests
    assert request.body["prompt"] == "hats" and request.body["sequential_image_generation_options"] == {
        "max_images": 8}
