"""/imagine end to end: real discord.py against the fake Discord, real relay client against the fake relay."""

from __future__ import annotations

import io
from datetime import timedelta

from PIL import Image

from tests.e2e.conftest import World
from tests.fakes.fake_relay import large_jpeg_factory
from tests.harness import settled


async def finished(interaction, timeout: float = 15.0):
    """Wait until the progress message shows the job's final summary."""
    def done():
        original = next((m for m in interaction.messages if m.id == interaction.original_message_id), None)
        if original and original.content.startswith(("✅", "❌")):
            return original
        return None

    return await interaction.waiter.wait_for(done, timeout, what="the job's final summary")


def image_messages(interaction):
    return [m for m in interaction.messages if m.files]


async def test_single_image_reaches_the_channel_byte_identical(world: World):
    interaction = await world.imagine(prompt="a red fox in the snow")
    summary = await finished(interaction)

    assert summary.content.startswith("✅ Done")
    [request] = world.relay.requests
    body = request.body
    assert body["model"] == "doubao-seedream-4-0-250828"
    assert body["prompt"] == "a red fox in the snow"
    assert body["size"] == "2K"
    assert body["watermark"] is False
    assert str(world.discord.alice.id) not in body["user"]
    [message] = image_messages(interaction)
    assert [data for _, data in message.files] == world.relay.served_images
    embed = message.embeds[0]
    assert "a red fox in the snow" in embed["description"]
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Model"] == "doubao-seedream-4-0-250828"
    assert fields["Size"].startswith("2K")
    job_id = embed["footer"]["text"].removeprefix("Job ")
    job = await settled(world.bot.jobs, job_id)
    assert job.state == "delivered" and job.result_message_ids == [message.id]


async def test_set_of_fifteen_images_arrives_whole_in_order(world: World):
    interaction = await world.generate(await world.imagine(prompt="fifteen frames of a sunrise", count=15))
    summary = await finished(interaction, timeout=30)

    assert "15 images" in summary.content
    body = world.relay.requests[0].body
    assert body["sequential_image_generation"] == "auto"
    assert body["sequential_image_generation_options"] == {"max_images": 15}
    messages = image_messages(interaction)
    assert all(len(m.files) <= 10 for m in messages)
    delivered = [data for message in messages for _, data in message.files]
    assert delivered == world.relay.served_images and len(delivered) == 15
    ranges = [field["value"] for m in messages for field in m.embeds[0]["fields"] if field["name"] == "Images"]
    assert ranges[0].startswith("1") and ranges[-1].endswith("15 of 15")


async def test_set_images_are_posted_as_they_arrive(world: World):
    world.relay.per_image_delay = 0.4
    interaction = await world.imagine(prompt="three slow frames", count=3)

    first = await interaction.waiter.wait_for(lambda: image_messages(interaction) or None, 10, what="a first image")
    assert len(world.relay.served_images) < 3  # the set is still being generated
    assert len(first[0].files) == 1
    await finished(interaction)
    assert sum(len(m.files) for m in image_messages(interaction)) == 3


async def test_set_of_fifteen_4k_images_over_the_limit_arrives_whole(world: World):
    world.relay.image_factory = large_jpeg_factory
    interaction = await world.generate(await world.imagine(prompt="huge posters", size="4K", count=15))
    await finished(interaction, timeout=120)

    files = [data for message in image_messages(interaction) for _, data in message.files]
    assert len(files) == 15
    limit = world.discord.guild.filesize_limit
    assert all(len(data) <= limit for data in files)


async def test_4k_image_over_10_mib_is_reencoded_to_fit(world: World):
    world.relay.image_factory = large_jpeg_factory
    interaction = await world.imagine(prompt="a very detailed 4K poster", size="4K")
    await finished(interaction, timeout=60)

    original = world.relay.served_images[0]
    assert len(original) > 10 * 2**20
    [message] = image_messages(interaction)
    [(filename, data)] = message.files
    assert filename.endswith(".jpg") and len(data) <= 10 * 2**20
    with Image.open(io.BytesIO(original)) as big, Image.open(io.BytesIO(data)) as posted:
        assert posted.format == "JPEG"
        assert abs(posted.width / posted.height - big.width / big.height) < 0.01
    assert any(field["name"] == "Note" for field in message.embeds[0]["fields"])


async def test_boosted_server_gets_the_original_bytes(boot, fake_discord, relay):
    relay.image_factory = large_jpeg_factory
    fake_discord.guild.premium_tier = 3  # 100 MiB uploads
    async with boot():
        interaction = await fake_discord.slash("imagine", {"prompt": "poster", "size": "4K"},
                                               attachment_size_limit=100 * 2**20)
        await finished(interaction, timeout=60)
    [message] = image_messages(interaction)
    assert [data for _, data in message.files] == relay.served_images


async def test_expired_token_posts_to_the_channel_mentioning_the_requester(world: World):
    interaction = await world.imagine(prompt="a slow painting", age=timedelta(minutes=14, seconds=30))

    message = await world.discord.wait_for_message(world.discord.general, lambda m: bool(m.files) and not m.via_webhook)
    assert [data for _, data in message.files] == world.relay.served_images
    assert message.content.startswith(f"<@{world.discord.alice.id}>")
    assert message.allowed_mentions is not None
    assert message.allowed_mentions.get("parse", []) == []
    assert [str(user) for user in message.allowed_mentions.get("users", [])] == [str(world.discord.alice.id)]
    assert not [m for m in interaction.messages if m.files]


async def test_token_rejected_mid_job_falls_back_to_the_channel(world: World):
    # A one-image job's one request after the defer is the edit of its reply, with the image.
    world.discord.fail_next("PATCH", r"^/webhooks/.*/@original$", 401,
                            {"message": "Invalid Webhook Token", "code": 50027})
    await world.imagine(prompt="a lighthouse")

    message = await world.discord.wait_for_message(world.discord.general, lambda m: bool(m.files) and not m.via_webhook)
    assert [data for _, data in message.files] == world.relay.served_images


async def test_discord_429_on_upload_is_retried_and_nothing_is_lost(world: World):
    world.discord.fail_next("PATCH", r"^/webhooks/.*/@original$", 429)
    interaction = await world.imagine(prompt="a kite")
    await finished(interaction)
    [message] = image_messages(interaction)
    assert [data for _, data in message.files] == world.relay.served_images


async def test_discord_500s_on_upload_are_retried_until_the_images_arrive(world: World):
    world.discord.fail_next("PATCH", r"^/webhooks/.*/@original$", 500, times=2)
    interaction = await world.imagine(prompt="a boat")
    await finished(interaction, timeout=60)
    [message] = image_messages(interaction)
    assert [data for _, data in message.files] == world.relay.served_images


async def test_a_one_image_job_costs_two_discord_requests_the_defer_and_one_edit_with_everything(world: World):
    before = len(world.discord.requests)
    interaction = await world.imagine(prompt="a paper boat")
    summary = await finished(interaction)

    made = [(r.method, r.path) for r in world.discord.requests[before:]
            if interaction.token in r.path or str(interaction.id) in r.path]
    assert made == [("POST", f"/interactions/{interaction.id}/{interaction.token}/callback"),
                    ("PATCH", f"/webhooks/{world.discord.app_id}/{interaction.token}/messages/@original")]
    # That one edit is the whole result: the summary, the image, its embed and its buttons.
    assert summary.content.startswith("✅ Done") and [data for _, data in summary.files] == world.relay.served_images
    assert summary.embeds and summary.embeds[0]["footer"]["text"].startswith("Job ")
    assert any(custom_id.startswith("sd:reroll:") for custom_id in summary.custom_ids)
    job = await settled(world.bot.jobs, summary.embeds[0]["footer"]["text"].removeprefix("Job "))
    assert job.result_message_ids == [summary.id] and not job.delivery and job.lease_owner is None
