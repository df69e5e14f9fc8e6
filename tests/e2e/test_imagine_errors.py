"""/imagine: bad options and every relay error class reach the member as clear messages."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import World
from tests.e2e.test_imagine import finished, image_messages
from tests.fakes.fake_relay import ark_error, new_api_error

FLAG_EPHEMERAL = 1 << 6


async def private_answer(interaction) -> str:
    """The ephemeral message the member got (as a direct response or a followup)."""
    def find():
        for message in interaction.messages:
            if message.ephemeral and message.content:
                return message.content
        return None

    return await interaction.waiter.wait_for(find, 10, what="a private answer")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"prompt": "a cat", "size": "800x800"}, "pixels"),
        ({"prompt": "a cat", "size": "5000x200"}, "aspect ratio"),
        ({"prompt": "a cat", "size": "huge"}, "1K"),
        ({"prompt": "x" * 4001}, "4,000"),
        ({"prompt": "   "}, "empty"),
    ],
)
async def test_bad_options_are_answered_privately_and_never_reach_the_relay(world: World, options, expected):
    interaction = await world.imagine(**options)
    callback = await interaction.wait_callback()

    assert callback.type == 4 and callback.data["flags"] & FLAG_EPHEMERAL
    assert expected in callback.data["content"]
    assert world.relay.requests == []


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, ark_error("InvalidParameter", "The parameter `prompt` is invalid. Request id: 0217abc"), "invalid"),
        (400, ark_error("InputTextSensitiveContentDetected"), "safety"),
        (400, ark_error("InputImageSensitiveContentDetected"), "safety"),
        (400, ark_error("OutputImageSensitiveContentDetected"), "safety"),
        (401, ark_error("AuthenticationError", type_="Unauthorized"), "key"),
        (429, ark_error("ModelAccountIpmRateLimitExceeded"), "busy"),
        (403, new_api_error("user quota is not enough", "insufficient_user_quota"), "credit"),
        (500, ark_error("InternalServiceError"), "internal error"),
        (200, "<html>not json</html>", "could not read"),
    ],
)
async def test_each_relay_error_reaches_the_member_and_refunds_the_quota(world: World, status, body, expected):
    world.relay.fail_next(status, body, headers={"Content-Type": "text/html"} if isinstance(body, str) else None)
    interaction = await world.imagine(prompt="a castle")
    summary = await finished(interaction)

    assert summary.content.startswith("❌")
    assert expected in summary.content.lower()
    assert "0217abc" not in summary.content and world.relay.api_key not in summary.content
    assert image_messages(interaction) == []
    status_now = await world.bot.quota.status(world.discord.guild.id, world.discord.alice.id, [])
    assert status_now.used == 0 and status_now.reserved == 0


async def test_relay_timeout_is_reported(boot, fake_discord, relay):
    relay.latency = 3
    async with boot(relay_timeout_seconds=0.5):
        interaction = await fake_discord.slash("imagine", {"prompt": "a slow one"})
        summary = await finished(interaction)
    assert "too long" in summary.content


async def test_rate_limit_with_retry_after_is_retried_then_succeeds(boot, fake_discord, relay):
    relay.fail_next(429, ark_error("ModelAccountRpmRateLimitExceeded"), headers={"Retry-After": "0"})
    async with boot(relay_max_retries=2):
        interaction = await fake_discord.slash("imagine", {"prompt": "a retried owl"})
        summary = await finished(interaction, timeout=20)
    assert summary.content.startswith("✅")
    assert len(relay.requests) == 2
    assert [data for m in image_messages(interaction) for _, data in m.files] == relay.served_images


async def test_one_blocked_image_in_a_set_does_not_sink_the_others(world: World):
    world.relay.image_errors = {1: "OutputImageSensitiveContentDetected"}
    interaction = await world.imagine(prompt="three views", count=3)
    summary = await finished(interaction)

    assert sum(len(m.files) for m in image_messages(interaction)) == 2
    assert "1 image failed" in summary.content
    status = await world.bot.quota.status(world.discord.guild.id, world.discord.alice.id, [])
    assert status.used == 2


async def test_mentions_in_a_prompt_never_ping(world: World):
    prompt = f"@everyone look at <@{world.discord.mod.id}> and <@&{world.discord.moderator.id}>"
    interaction = await world.imagine(prompt=prompt)
    await finished(interaction)

    for message in interaction.messages:
        assert message.allowed_mentions is not None
        assert message.allowed_mentions.get("parse", []) == []
        assert not message.allowed_mentions.get("users") and not message.allowed_mentions.get("roles")
    assert prompt in image_messages(interaction)[0].embeds[0]["description"]


async def test_size_autocomplete_offers_tiers_ratios_and_what_was_typed(world: World):
    choices = await world.discord.autocomplete("imagine", {"prompt": "x", "size": ""}, "size")
    values = [choice["value"] for choice in choices]
    assert {"1K", "2K", "4K", "2048x2048", "4096x4096", "2848x1600", "1600x2848"} <= set(values)
    assert len(choices) <= 25

    typed = await world.discord.autocomplete("imagine", {"prompt": "x", "size": "3000x2000"}, "size")
    assert typed[0]["value"] == "3000x2000"


async def test_jobs_queue_and_show_their_position(boot, fake_discord, relay):
    relay.latency = 0.6
    async with boot(relay_concurrency=1):
        first = await fake_discord.slash("imagine", {"prompt": "first"}, user=fake_discord.alice)
        await first.wait_callback()
        second = await fake_discord.slash("imagine", {"prompt": "second"}, user=fake_discord.mod)
        queued = await second.waiter.wait_for(
            lambda: next((m for m in second.messages if "position 1" in m.content
                          or any("position 1" in e.get("content", "") for e in m.edits)), None),
            10, what="a queue position")
        assert queued is not None
        await finished(first)
        await finished(second)


async def test_one_member_cannot_starve_the_server(boot, fake_discord, relay):
    relay.latency = 0.5
    async with boot(relay_concurrency=2, max_jobs_per_user=1):
        alice_jobs = [await fake_discord.slash("imagine", {"prompt": f"alice {n}"}) for n in range(3)]
        mod_job = await fake_discord.slash("imagine", {"prompt": "mod's turn"}, user=fake_discord.mod)
        await finished(mod_job)
        for job in alice_jobs:
            await finished(job, timeout=20)
    # mod's job ran alongside alice's first job, ahead of alice's queued second and third
    prompts = [request.body["prompt"] for request in relay.requests]
    assert prompts.index("mod's turn") < prompts.index("alice 1") < prompts.index("alice 2")
