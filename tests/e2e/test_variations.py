"""/imagine mode:variations end to end: independent takes, delivered like a set, charged per image."""

from __future__ import annotations

from tests.e2e.conftest import World
from tests.e2e.test_references import finished
from tests.e2e.test_results import button, image_messages
from tests.fakes.fake_relay import ark_error


async def used(world: World) -> tuple[int, int]:
    fake = world.discord
    status = await world.bot.quota.status(fake.guild.id, fake.alice.id, [fake.artist.id])
    return status.used, status.reserved


async def test_variations_are_independent_single_image_requests_delivered_like_a_set(world: World):
    interaction = await world.imagine(prompt="a lighthouse", count=3, mode="variations")
    summary = await finished(interaction)

    assert summary.content.startswith("✅"), summary.content
    bodies = [request.body for request in world.relay.requests]
    assert len(bodies) == 3
    assert all(body["prompt"] == "a lighthouse" and body["sequential_image_generation"] == "disabled"
               and "sequential_image_generation_options" not in body for body in bodies)
    messages = image_messages(interaction)
    delivered = [data for message in messages for _, data in message.files]
    assert sorted(delivered) == sorted(world.relay.served_images) and len(delivered) == 3
    assert all(message.custom_ids for message in messages)  # the usual controls
    assert await used(world) == (3, 0)
    job = await world.bot.jobs.get(summary.content.split("`")[1])
    assert job is not None and job.request.mode == "variations" and job.request.count == 3


async def test_a_failed_take_costs_nothing_and_the_others_are_delivered(world: World):
    world.relay.fail_next(400, ark_error("OutputImageSensitiveContentDetected"))
    interaction = await world.imagine(prompt="a lighthouse", count=3, mode="variations")
    summary = await finished(interaction)

    assert summary.content.startswith("✅"), summary.content
    assert len(world.relay.requests) == 3
    assert sum(len(m.files) for m in image_messages(interaction)) == 2
    assert await used(world) == (2, 0)


async def test_the_takes_run_in_parallel(world: World):
    world.relay.latency = 0.5  # each request is held; all three must be in before any answers
    interaction = await world.imagine(prompt="a lighthouse", count=3, mode="variations")
    await world.discord.wait_for(lambda: len(world.relay.requests) == 3, 10, what="three requests")
    assert image_messages(interaction) == []
    arrivals = [request.at for request in world.relay.requests]
    assert max(arrivals) - min(arrivals) < world.relay.latency
    await finished(interaction)


async def test_reroll_of_variations_makes_variations_again(world: World):
    interaction = await world.imagine(prompt="a lighthouse", count=2, mode="variations")
    await finished(interaction)
    first = image_messages(interaction)[0]
    click = await world.discord.click(first, button(first, "reroll"))
    await finished(click)

    assert len(world.relay.requests) == 4
    assert all("sequential_image_generation_options" not in request.body for request in world.relay.requests)


async def test_the_default_mode_is_one_set(world: World):
    interaction = await world.imagine(prompt="a storyboard", count=3)
    await finished(interaction)
    [request] = world.relay.requests
    assert request.body["sequential_image_generation_options"] == {"max_images": 3}
