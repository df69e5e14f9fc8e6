"""Reference images, end to end: /imagine reference, /blend, "Edit with Seedream", and replies.

The real bot runs against the fake Discord (which hides message content from a bot without the
Message Content intent unless the message mentions it, like Discord) and the fake relay.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

from tests.e2e.conftest import BotStarter, World
from tests.fakes.discord_state import FLAG_EPHEMERAL, FakeInteraction, StoredMessage
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord

DONE = ("✅", "❌")


def picture(colour: str, size: tuple[int, int] = (64, 48), kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, kind)
    return buffer.getvalue()


RED, GREEN, BLUE = picture("red"), picture("green"), picture("blue")
PHOTO = picture("orange", (80, 60), "JPEG")


def data_uri(content: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"


def relay_images(body: dict[str, Any]) -> list[str]:
    images = body.get("image")
    return [images] if isinstance(images, str) else list(images or [])


async def finished(interaction: FakeInteraction) -> StoredMessage:
    def done() -> StoredMessage | None:
        original = next((m for m in interaction.messages if m.id == interaction.original_message_id), None)
        return original if original and original.content.startswith(DONE) else None

    return await interaction.waiter.wait_for(done, 15.0, what="the job's final summary")


async def private_answer(fake: StandardDiscord, interaction: FakeInteraction) -> str:
    """What the bot told the member privately: an ephemeral response or followup."""
    def answer() -> str | None:
        for request in fake.requests:
            if request.interaction is not interaction or request.status not in (200, 204):
                continue
            payload = request.payload or {}
            data = payload.get("data", payload) if request.path.endswith("/callback") else payload
            if int(data.get("flags") or 0) & FLAG_EPHEMERAL:
                return str(data["content"])
        return None

    text = await fake.wait_for(answer, 10.0, what="a private answer")
    assert not [m for m in interaction.messages if not m.ephemeral], "something was posted publicly"
    return text


def bot_replies(fake: StandardDiscord, message: StoredMessage) -> list[StoredMessage]:
    return [m for m in fake.messages(message.channel_id) if m.author is fake.bot_user and m.reply_to_id == message.id]


async def reply_result(fake: StandardDiscord, message: StoredMessage) -> tuple[StoredMessage, StoredMessage]:
    """(image message, status message) the bot posted in answer to a member's reply."""
    def done() -> tuple[StoredMessage, StoredMessage] | None:
        replies = bot_replies(fake, message)
        images = [m for m in replies if m.files]
        status = [m for m in replies if m.content.startswith(DONE)]
        return (images[0], status[0]) if images and status else None

    return await fake.wait_for(done, 15.0, what="the bot's answer to a reply")


async def reply_answer(fake: StandardDiscord, message: StoredMessage) -> StoredMessage:
    """The bot's text answer (e.g. a refusal) to a member's message."""
    return await fake.wait_for(lambda: next(iter(bot_replies(fake, message)), None), 10.0,
                               what="the bot's answer to a reply")


async def imagine_result(world: World) -> StoredMessage:
    interaction = await world.imagine(prompt="a red fox in the snow")
    summary = await finished(interaction)
    assert summary.content.startswith("✅"), summary.content
    return next(m for m in interaction.messages if m.files)


async def nothing_charged(world: World) -> None:
    fake = world.discord
    status = await world.bot.quota.status(fake.guild.id, fake.alice.id, [fake.artist.id])
    assert (status.used, status.reserved) == (0, 0)


# -- /imagine reference, /blend -----------------------------------------------------------------

async def test_imagine_reference_reaches_the_relay_as_a_data_uri_with_a_lowercase_mime(world: World):
    interaction = await world.imagine(prompt="make it autumn", reference=("Holiday.JPG", PHOTO, "image/JPEG"))
    summary = await finished(interaction)

    assert summary.content.startswith("✅"), summary.content
    [request] = world.relay.requests
    assert request.body["image"] == data_uri(PHOTO, "image/jpeg")  # the bytes as uploaded, type read from them
    job = await world.bot.jobs.get(summary.content.split("`")[1])
    assert job is not None and job.kind == "imagine"
    [descriptor] = job.request.references
    assert descriptor.filename == "Holiday.JPG" and descriptor.message_id is None
    assert descriptor.channel_id == world.discord.general.id and descriptor.url.startswith("http://127.0.0.1")


async def test_blend_sends_three_images_to_the_relay_in_the_order_given(world: World):
    interaction = await world.discord.slash("blend", {
        "prompt": "image 1 in the style of image 2, lit like image 3",
        "image1": ("red.png", RED), "image2": ("green.png", GREEN), "image3": ("blue.png", BLUE),
    })
    summary = await finished(interaction)

    assert summary.content.startswith("✅"), summary.content
    [request] = world.relay.requests
    assert relay_images(request.body) == [data_uri(RED), data_uri(GREEN), data_uri(BLUE)]
    job = await world.bot.jobs.get(summary.content.split("`")[1])
    assert job is not None and job.kind == "blend"
    assert [d.filename for d in job.request.references] == ["red.png", "green.png", "blue.png"]


async def test_url_transport_sends_the_discord_urls(boot: BotStarter, fake_discord: StandardDiscord,
                                                   relay: FakeRelay):
    async with boot(reference_transport="url"):
        interaction = await fake_discord.slash("blend", {
            "prompt": "mix them", "image1": ("red.png", RED), "image2": ("green.png", GREEN)})
        summary = await finished(interaction)

    assert summary.content.startswith("✅"), summary.content
    resolved = interaction.payload["data"]["resolved"]["attachments"]
    urls = [resolved[option["value"]]["url"] for option in interaction.payload["data"]["options"]
            if option["type"] == 11]
    [request] = relay.requests
    assert relay_images(request.body) == urls and all(url.startswith("http://127.0.0.1") for url in urls)


# -- the message context menu ------------------------------------------------------------------

async def test_edit_with_seedream_opens_a_modal_and_uses_every_image_of_the_message(world: World):
    fake = world.discord
    posted = await fake.user_message(fake.general, fake.alice, "my two cats", attachments=[
        ("one.png", RED), ("notes.txt", b"not a picture", "text/plain"), ("two.png", GREEN)])

    opened = await fake.context_menu("Edit with Seedream", posted)
    modal = (await opened.wait_callback()).data
    submitted = await fake.submit_modal(opened, {"prompt": "put them on the moon", "size": "1K"})
    summary = await finished(submitted)

    assert modal["title"] == "Edit 2 images with Seedream"
    assert summary.content.startswith("✅"), summary.content
    [request] = world.relay.requests
    assert request.body["prompt"] == "put them on the moon" and request.body["size"] == "1K"
    assert relay_images(request.body) == [data_uri(RED), data_uri(GREEN)]  # the text file is not an image
    job = await world.bot.jobs.get(summary.content.split("`")[1])
    assert job is not None and job.kind == "edit" and job.source_message_id == posted.id
    assert [(d.message_id, d.filename) for d in job.request.references] == [
        (posted.id, "one.png"), (posted.id, "two.png")]
    assert [m for m in submitted.messages if m.files], "the result was posted"


async def test_edit_with_seedream_with_a_bad_size_is_refused_privately_before_any_download(world: World):
    fake = world.discord
    posted = await fake.user_message(fake.general, fake.alice, "cat", attachments=[("cat.png", RED)])

    opened = await fake.context_menu("Edit with Seedream", posted)
    submitted = await fake.submit_modal(opened, {"prompt": "add a hat", "size": "banana"})

    assert "couldn't read `banana` as a size" in await private_answer(fake, submitted)
    assert not [r for r in fake.requests if r.path.startswith("/cdn/")]
    assert world.relay.requests == []


async def test_edit_with_seedream_on_a_message_without_images_explains_privately(world: World):
    fake = world.discord
    posted = await fake.user_message(fake.general, fake.alice, "just words")

    opened = await fake.context_menu("Edit with Seedream", posted)

    assert "no images" in await private_answer(fake, opened)
    assert world.relay.requests == []


# -- replies -------------------------------------------------------------------------------------

async def test_with_the_intent_any_reply_to_a_bot_result_edits_it(boot: BotStarter, fake_discord: StandardDiscord,
                                                                  relay: FakeRelay, database_url: str):
    async with boot(message_content_intent=True) as bot:
        world = World(fake_discord, relay, bot, database_url)
        result = await imagine_result(world)
        reply = await fake_discord.user_message(fake_discord.general, fake_discord.alice, "now make it night",
                                                reply_to=result)
        images, status = await reply_result(fake_discord, reply)

    assert fake_discord.identified_intents is not None and fake_discord.identified_intents & (1 << 15)
    _, second = relay.requests
    assert second.body["prompt"] == "now make it night"
    assert relay_images(second.body) == [data_uri(relay.served_images[0], "image/jpeg")]
    assert images.files[0][1] == relay.served_images[1]
    assert images.mentioned_user_ids == [fake_discord.alice.id]  # the answer pings the member, nobody else
    assert status.content.startswith("✅") and images.custom_ids, "result controls on the reply's result"


async def test_without_the_intent_a_reply_needs_a_mention_and_a_plain_reply_is_ignored(world: World):
    fake = world.discord
    result = await imagine_result(world)

    ignored = await fake.user_message(fake.general, fake.alice, "make it night", reply_to=result)
    asked = await fake.user_message(fake.general, fake.alice, f"{fake.bot_user.mention} make it night",
                                    reply_to=result)
    images, _ = await reply_result(fake, asked)

    assert bot_replies(fake, ignored) == []  # handled before `asked`: events are processed in order
    _, second = world.relay.requests
    assert second.body["prompt"] == "make it night"  # the mention is not part of the prompt
    assert relay_images(second.body) == [data_uri(world.relay.served_images[0], "image/jpeg")]
    assert images.files


async def test_without_the_intent_a_reply_pinging_a_reply_result_counts_as_a_mention(world: World):
    """Results of the reply flow are ordinary bot messages, so a reply with ping on mentions the bot."""
    fake = world.discord
    upload = await fake.user_message(fake.general, fake.mod, "cat", attachments=[("cat.png", RED)])
    asked = await fake.user_message(fake.general, fake.alice, f"{fake.bot_user.mention} add a hat",
                                    reply_to=upload)
    images, _ = await reply_result(fake, asked)

    again = await fake.user_message(fake.general, fake.alice, "make the hat blue", reply_to=images)
    await reply_result(fake, again)

    _, second = world.relay.requests
    assert second.body["prompt"] == "make the hat blue"
    assert relay_images(second.body) == [data_uri(world.relay.served_images[0], "image/jpeg")]


async def test_a_mention_reply_to_images_the_bot_cannot_see_points_to_the_context_menu(
        boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay):
    fake = fake_discord
    fake.portal_intents = 0  # Message Content is off in the Developer Portal: the API hides it too
    async with boot():
        upload = await fake.user_message(fake.general, fake.mod, "cat", attachments=[("cat.png", RED)])
        reply = await fake.user_message(fake.general, fake.alice, f"{fake.bot_user.mention} add a hat",
                                        reply_to=upload)
        answer = await reply_answer(fake, reply)

    assert "Edit with Seedream" in answer.content and "Message Content" in answer.content
    assert relay.requests == []


async def test_a_reply_refused_by_the_quota_is_answered_in_a_reply(
        boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay):
    fake = fake_discord
    async with boot(quota_default_limit=0):
        upload = await fake.user_message(fake.general, fake.mod, "cat", attachments=[("cat.png", RED)])
        reply = await fake.user_message(fake.general, fake.alice, f"{fake.bot_user.mention} add a hat",
                                        reply_to=upload)
        answer = await reply_answer(fake, reply)

    assert answer.content.startswith("You have used your 0 images") and not answer.files
    assert answer.mentioned_user_ids == [fake.alice.id]
    assert relay.requests == []


async def test_images_attached_to_a_reply_come_after_the_replied_to_images(world: World):
    fake = world.discord
    upload = await fake.user_message(fake.general, fake.mod, "our logo", attachments=[("logo.png", RED)])
    reply = await fake.user_message(fake.general, fake.alice, f"{fake.bot_user.mention} put the logo on these",
                                    attachments=[("shirt.png", GREEN), ("mug.png", BLUE)], reply_to=upload)
    await reply_result(fake, reply)

    [request] = world.relay.requests
    assert relay_images(request.body) == [data_uri(RED), data_uri(GREEN), data_uri(BLUE)]
    assert request.body["prompt"] == "put the logo on these"


async def test_with_the_intent_a_reply_to_a_members_image_still_needs_a_mention(
        boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay):
    fake = fake_discord
    async with boot(message_content_intent=True):
        upload = await fake.user_message(fake.general, fake.mod, "my cat", attachments=[("cat.png", RED)])
        ignored = await fake.user_message(fake.general, fake.alice, "so cute", reply_to=upload)
        asked = await fake.user_message(fake.general, fake.alice, f"{fake.bot_user.mention} add a hat",
                                        reply_to=upload)
        await reply_result(fake, asked)

    assert bot_replies(fake, ignored) == []
    [request] = relay.requests
    assert request.body["prompt"] == "add a hat"


# -- invalid references: refused with the image named, no relay call, no quota -------------------

async def test_a_file_that_is_not_an_image_is_refused_by_name(world: World):
    interaction = await world.imagine(prompt="edit", reference=("notes.png", b"just some text", "image/png"))

    answer = await private_answer(world.discord, interaction)

    assert "notes.png" in answer and "not an image the model accepts" in answer
    assert world.relay.requests == []
    await nothing_charged(world)


async def test_an_image_over_ten_megabytes_is_refused_before_it_is_downloaded(world: World):
    big = picture("red") + b"\0" * (10 * 2**20)
    interaction = await world.discord.slash("blend", {
        "prompt": "mix", "image1": ("small.png", RED), "image2": ("huge.png", big)})

    answer = await private_answer(world.discord, interaction)

    assert "huge.png" in answer and "at most 10 MB" in answer
    assert not [r for r in world.discord.requests if r.path.startswith("/cdn/")]
    assert world.relay.requests == []
    await nothing_charged(world)


async def test_an_image_smaller_than_fifteen_pixels_is_refused_by_name(world: World):
    interaction = await world.imagine(prompt="edit", reference=("tiny.png", picture("red", (10, 10))))

    answer = await private_answer(world.discord, interaction)

    assert "tiny.png" in answer and "10×10" in answer and "at least 15 pixels" in answer
    assert world.relay.requests == []
    await nothing_charged(world)


async def test_more_than_fourteen_references_in_a_reply_are_refused_in_a_reply(world: World):
    fake = world.discord
    upload = await fake.user_message(fake.general, fake.mod, "ten pictures",
                                     attachments=[(f"p{n}.png", RED) for n in range(10)])
    reply = await fake.user_message(fake.general, fake.alice, f"{fake.bot_user.mention} combine all of these",
                                    attachments=[(f"q{n}.png", GREEN) for n in range(5)], reply_to=upload)

    answer = await reply_answer(fake, reply)

    assert "15 reference images" in answer.content and "at most 14" in answer.content
    assert answer.mentioned_user_ids == [fake.alice.id]
    assert world.relay.requests == []
    assert not [r for r in fake.requests if r.path.startswith("/cdn/")]
    await nothing_charged(world)


async def test_references_plus_requested_images_over_fifteen_are_refused(world: World):
    interaction = await world.discord.slash("blend", {
        "prompt": "mix", "count": 10, **{f"image{n}": (f"p{n}.png", RED) for n in range(1, 7)}})

    answer = await private_answer(world.discord, interaction)

    assert "6 reference image" in answer and "at most 9" in answer
    assert world.relay.requests == []
    await nothing_charged(world)


async def test_a_bad_image_in_a_reply_is_refused_by_name_in_a_reply(world: World):
    fake = world.discord
    upload = await fake.user_message(fake.general, fake.mod, "pics", attachments=[("fine.png", RED)])
    reply = await fake.user_message(fake.general, fake.alice, f"{fake.bot_user.mention} use this too",
                                    attachments=[("broken.png", b"\x89PNG not really")], reply_to=upload)

    answer = await reply_answer(fake, reply)

    assert "broken.png" in answer.content and "not an image the model accepts" in answer.content
    assert answer.mentioned_user_ids == [fake.alice.id]
    assert world.relay.requests == []
    await nothing_charged(world)
