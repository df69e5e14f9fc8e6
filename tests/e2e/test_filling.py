"""Sets fill their messages in place: each arriving image is added to the set's current message."""

from __future__ import annotations

from tests.e2e.conftest import World
from tests.e2e.test_references import finished
from tests.e2e.test_results import image_messages, job_id_of


async def test_a_slow_set_fills_one_message_keeping_the_images_already_there(world: World):
    world.relay.per_image_delay = 0.3  # the images arrive one by one
    interaction = await world.imagine(prompt="three slow frames", count=3)

    first = (await interaction.waiter.wait_for(lambda: image_messages(interaction) or None, 10,
                                               what="the first image"))[0]
    first_attachment = first.attachments[0].id
    await interaction.waiter.wait_for(lambda: len(first.attachments) >= 2 or None, 10,
                                      what="a second image in the same message")
    assert first.attachments[0].id == first_attachment  # kept, not uploaded again
    await finished(interaction)

    [message] = image_messages(interaction)
    assert message is first
    assert [data for _, data in message.files] == world.relay.served_images
    assert message.attachments[0].id == first_attachment
    job_id = job_id_of(message)
    assert message.custom_ids[0] == f"sd:pick:{job_id}"  # the picker lists all three now
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    assert fields["Images"] == "1–3 of 3"
    job = await world.bot.jobs.get(job_id)
    assert job is not None and job.result_message_ids == [message.id] and len(job.images) == 3


async def test_a_message_holds_ten_images_then_the_next_one_starts(world: World):
    world.relay.per_image_delay = 0.05
    interaction = await world.generate(await world.imagine(prompt="twelve frames", count=12))
    await finished(interaction)

    messages = image_messages(interaction)
    assert [len(m.files) for m in messages] == [10, 2]
    delivered = [data for m in messages for _, data in m.files]
    assert delivered == world.relay.served_images


async def test_a_deleted_message_is_not_filled_the_next_images_get_a_new_one(world: World):
    world.relay.per_image_delay = 0.3
    interaction = await world.imagine(prompt="three slow frames", count=3)
    first = (await interaction.waiter.wait_for(lambda: image_messages(interaction) or None, 10,
                                               what="the first image"))[0]
    await world.discord.click(first, next(c for c in first.custom_ids if c.startswith("sd:delete:")))
    await world.discord.wait_for(lambda: first.deleted, 10, what="the first message to be deleted")
    summary = await finished(interaction)

    assert summary.content.startswith("✅"), summary.content
    remaining = [m for m in image_messages(interaction) if not m.deleted]
    assert sum(len(m.files) for m in remaining) >= 1
    assert all(m is not first for m in remaining)
