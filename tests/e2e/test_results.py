"""Result controls (Reroll, Edit, Upscale, Delete, the image picker) and /show, end to end.

The real bot runs against the fake Discord and the fake relay; clicks are real component
interactions on the messages the bot posted, including after the bot process restarts.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

from tests import harness
from tests.e2e.conftest import World
from tests.fakes.discord_state import MANAGE_MESSAGES, FakeInteraction, StoredMessage

DONE = ("✅", "❌")


async def finished(interaction: FakeInteraction, within: float = 15.0) -> StoredMessage:
    """The job's final summary on the interaction's original message."""
    def done() -> StoredMessage | None:
        original = next((m for m in interaction.messages if m.id == interaction.original_message_id), None)
        return original if original and original.content.startswith(DONE) else None

    return await interaction.waiter.wait_for(done, within, what="the job's final summary")


def image_messages(interaction: FakeInteraction) -> list[StoredMessage]:
    return [m for m in interaction.messages if m.files]


async def private_reply(interaction: FakeInteraction, within: float = 10.0) -> StoredMessage:
    """The ephemeral answer to an interaction."""
    def ephemeral() -> StoredMessage | None:
        return next((m for m in interaction.messages if m.ephemeral), None)

    return await interaction.waiter.wait_for(ephemeral, within, what="a private answer")


def job_id_of(message: StoredMessage) -> str:
    return str(message.embeds[0]["footer"]["text"]).removeprefix("Job ")


def fields(message: StoredMessage) -> dict[str, str]:
    return {field["name"]: field["value"] for field in message.embeds[0]["fields"]}


def reference_bytes(body: dict[str, Any]) -> list[bytes]:
    """The reference images of a relay request, decoded from their data URIs."""
    images = body.get("image")
    uris = [images] if isinstance(images, str) else list(images or [])
    return [base64.b64decode(uri.split(",", 1)[1]) for uri in uris]


async def imagine_result(world: World, **options: Any) -> tuple[list[StoredMessage], str]:
    interaction = await world.imagine(prompt=options.pop("prompt", "a red fox in the snow"), **options)
    if options.get("count", 1) >= world.bot.settings.confirm_at_images > 0:
        interaction = await world.generate(interaction)
    summary = await finished(interaction, within=30)
    assert summary.content.startswith("✅"), summary.content
    messages = image_messages(interaction)
    await harness.settled(world.bot.jobs, job_id_of(messages[0]))
    return messages, job_id_of(messages[0])


def button(message: StoredMessage, action: str) -> str:
    return next(c for c in message.custom_ids if c.startswith(f"sd:{action}:"))


def slow_first_post(fake: Any, seconds: float = 0.5) -> None:
    """Hold the first image post back, so the rest of a set arrives meanwhile and shares one message
    (a set is posted as it arrives; this makes the layout [1, rest] deterministic)."""
    fake.fail_next("POST", r"^/webhooks/", 429,
                   {"message": "You are being rate limited.", "retry_after": seconds, "global": False})


def holding(messages: list[StoredMessage], job_id: str, index: int) -> StoredMessage:
    """The result message that holds image `index` (0-based) of the job (a set may span messages)."""
    name = f"seedream-{job_id}-{index + 1}."
    return next(m for m in messages if any(filename.startswith(name) for filename, _ in m.files))


def with_picker(messages: list[StoredMessage]) -> StoredMessage:
    return next(m for m in messages if any(c.startswith("sd:pick:") for c in m.custom_ids))


async def relay_requests(world: World, count: int) -> None:
    await world.discord.wait_for(lambda: len(world.relay.requests) >= count, 15,
                                 what=f"{count} relay request(s)")


# -- what the controls look like ------------------------------------------------------------------


async def test_a_single_image_result_carries_reroll_edit_upscale_and_delete(world: World):
    [message], job_id = await imagine_result(world)

    assert message.custom_ids == [f"sd:reroll:{job_id}", f"sd:edit:{job_id}:0", f"sd:upscale:{job_id}:0",
                                  f"sd:delete:{job_id}"]
    labels = [c.get("label") for row in message.components for c in row["components"]]
    assert labels == ["Reroll", "Edit", "Upscale 4K", "Delete"]
    assert all(len(custom_id) <= 100 for custom_id in message.custom_ids)


async def test_each_message_of_a_set_lists_its_own_images_in_the_picker(world: World):
    slow_first_post(world.discord)
    messages, job_id = await imagine_result(world, count=12)

    assert [len(m.files) for m in messages] == [1, 10, 1]
    first, middle, last = messages
    assert first.custom_ids == [f"sd:reroll:{job_id}", f"sd:edit:{job_id}:0", f"sd:upscale:{job_id}:0",
                                f"sd:delete:{job_id}"]
    [select_row, button_row] = middle.components
    [select] = select_row["components"]
    assert select["custom_id"] == f"sd:pick:{job_id}"
    assert [(o["label"], o["value"]) for o in select["options"]] == [(f"Image {n}", str(n - 1)) for n in range(2, 12)]
    assert [c["custom_id"] for c in button_row["components"]] == [f"sd:reroll:{job_id}", f"sd:delete:{job_id}"]
    assert f"sd:upscale:{job_id}:11" in last.custom_ids


# -- Reroll ---------------------------------------------------------------------------------------


async def test_reroll_runs_the_same_request_again_and_links_to_its_source(world: World):
    [message], job_id = await imagine_result(world, prompt="a lighthouse at dusk", size="2848x1600")

    click = await world.discord.click(message, button(message, "reroll"))
    await finished(click)

    first, second = (request.body for request in world.relay.requests)
    for key in ("prompt", "size", "watermark"):
        assert second[key] == first[key]
    [result] = image_messages(click)
    assert message.id != result.id
    assert fields(result)["From"].endswith(f"/{world.discord.general.id}/{message.id}")
    job = await harness.settled(world.bot.jobs, job_id_of(result))
    assert (job.kind, job.parent_job_id, job.source_message_id) == ("reroll", job_id, message.id)
    assert job.requester_id == world.discord.alice.id
    assert job.dedupe_key is None  # released once the job finished


async def test_reroll_of_a_set_asks_for_the_whole_set_again(world: World):
    messages, _ = await imagine_result(world, prompt="four seasons", count=4)

    click = await world.discord.click(messages[0], button(messages[0], "reroll"))
    await finished(click)

    assert world.relay.requests[1].body["sequential_image_generation_options"] == {"max_images": 4}
    assert sum(len(m.files) for m in image_messages(click)) == 4


async def test_a_double_click_starts_one_job_and_a_later_click_starts_another(world: World):
    [message], _ = await imagine_result(world)
    world.relay.latency = 0.5

    first = await world.discord.click(message, button(message, "reroll"))
    second = await world.discord.click(message, button(message, "reroll"))
    outcomes = sorted([(*await settled(click), click) for click in (first, second)], key=lambda outcome: outcome[0])

    assert [kind for kind, _, _ in outcomes] == ["done", "refused"]
    assert "already working on that" in outcomes[1][1].content
    refused = outcomes[1][2]
    callback = await refused.wait_callback()
    assert callback.type == 4 and callback.data["flags"] & (1 << 6)  # privately, with no public "thinking…"
    assert all(m.ephemeral for m in refused.messages)
    assert len(world.relay.requests) == 2  # the original and one reroll

    await harness.idle(world.bot.jobs)  # the reroll's end (and its dedupe key) commits just after its summary
    third = await world.discord.click(message, button(message, "reroll"))
    await finished(third)
    assert len(world.relay.requests) == 3


async def settled(interaction: FakeInteraction) -> tuple[str, StoredMessage]:
    """("done", summary) for a click that ran a job, ("refused", private answer) for one refused."""
    def outcome() -> tuple[str, StoredMessage] | None:
        for message in interaction.messages:
            if message.ephemeral:
                return "refused", message
            if message.id == interaction.original_message_id and message.content.startswith(DONE):
                return "done", message
        return None

    return await interaction.waiter.wait_for(outcome, 15, what="the click to settle")


async def test_reroll_of_imagine_with_a_reference_sends_the_uploaded_image_again(world: World):
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), "orange").save(buffer, "PNG")
    upload = buffer.getvalue()
    interaction = await world.imagine(prompt="make it autumn", reference=("leaf.png", upload, "image/png"))
    await finished(interaction)
    [message] = image_messages(interaction)

    click = await world.discord.click(message, button(message, "reroll"))
    await finished(click)

    assert [reference_bytes(r.body) for r in world.relay.requests] == [[upload], [upload]]
    assert world.relay.requests[1].body["prompt"] == "make it autumn"


async def test_reroll_of_an_edit_fetches_its_reference_again(world: World):
    [message], _ = await imagine_result(world)
    opened = await world.discord.click(message, button(message, "edit"))
    edit = await world.discord.submit_modal(opened, {"prompt": "make it night"})
    await finished(edit)
    [edited] = image_messages(edit)

    click = await world.discord.click(edited, button(edited, "reroll"))
    await finished(click)

    assert world.relay.requests[2].body["prompt"] == "make it night"
    assert reference_bytes(world.relay.requests[2].body) == [message.files[0][1]]


async def test_reroll_says_so_when_the_reference_images_are_gone(world: World):
    [message], _ = await imagine_result(world)
    opened = await world.discord.click(message, button(message, "edit"))
    edit = await world.discord.submit_modal(opened, {"prompt": "make it night"})
    await finished(edit)
    [edited] = image_messages(edit)
    await world.discord.click(message, button(message, "delete"))  # the reference's message
    await world.discord.wait_for(lambda: message.deleted, 10, what="the source to be deleted")

    click = await world.discord.click(edited, button(edited, "reroll"))
    reply = await private_reply(click)

    assert "reference images are gone" in reply.content
    assert len(world.relay.requests) == 2


# -- Edit and Upscale -----------------------------------------------------------------------------


async def test_edit_asks_for_a_prompt_and_uses_the_result_as_the_reference(world: World):
    [message], job_id = await imagine_result(world, prompt="a cat on a sofa")

    opened = await world.discord.click(message, button(message, "edit"))
    callback = await opened.wait_callback()
    assert callback.data["title"] == "Edit image"
    edit = await world.discord.submit_modal(opened, {"prompt": "the same cat, wearing a hat", "size": "1K"})
    await finished(edit)

    body = world.relay.requests[1].body
    assert body["prompt"] == "the same cat, wearing a hat"
    assert body["size"] == "1K"
    assert reference_bytes(body) == [message.files[0][1]]
    [result] = image_messages(edit)
    assert fields(result)["From"].endswith(f"/{message.id}")
    job = await world.bot.jobs.get(job_id_of(result))
    assert job is not None
    assert (job.kind, job.parent_job_id, job.source_message_id) == ("edit", job_id, message.id)
    assert job.request.references[0].message_id == message.id


async def test_edit_without_a_size_keeps_the_original_size(world: World):
    [message], _ = await imagine_result(world, size="2848x1600")

    opened = await world.discord.click(message, button(message, "edit"))
    edit = await world.discord.submit_modal(opened, {"prompt": "add a rainbow"})
    await finished(edit)

    assert world.relay.requests[1].body["size"] == "2848x1600"


async def test_edit_with_a_bad_size_is_refused_privately_without_a_relay_call(world: World):
    [message], _ = await imagine_result(world)

    opened = await world.discord.click(message, button(message, "edit"))
    edit = await world.discord.submit_modal(opened, {"prompt": "add a rainbow", "size": "10x10"})
    reply = await private_reply(edit)

    assert "10x10 is too small" in reply.content
    assert len(world.relay.requests) == 1


async def test_upscale_asks_for_4k_with_the_image_as_the_reference(world: World):
    [message], job_id = await imagine_result(world, prompt="a tiny robot")

    click = await world.discord.click(message, button(message, "upscale"))
    await finished(click)

    body = world.relay.requests[1].body
    assert body["size"] == "4096x4096"  # 4K, in the square image's shape
    assert reference_bytes(body) == [message.files[0][1]]
    assert "a tiny robot" in body["prompt"]
    [result] = image_messages(click)
    job = await world.bot.jobs.get(job_id_of(result))
    assert job is not None
    assert (job.kind, job.parent_job_id, job.source_message_id) == ("upscale", job_id, message.id)
    assert fields(result)["From"].endswith(f"/{message.id}")


async def test_the_picker_chooses_image_three_of_a_set_for_upscale(world: World):
    slow_first_post(world.discord)
    messages, job_id = await imagine_result(world, prompt="four seasons", count=4)
    message = holding(messages, job_id, 2)
    assert message is with_picker(messages)

    picked = await world.discord.click(message, f"sd:pick:{job_id}", values=["2"])
    reply = await private_reply(picked)
    assert "Image 3" in reply.embeds[0]["description"]
    assert [c.get("label") for row in reply.components for c in row["components"]] == [
        "Edit image 3", "Upscale image 3 to 4K"]

    click = await world.discord.click(reply, button(reply, "upscale"))
    await finished(click)

    body = world.relay.requests[1].body
    assert reference_bytes(body) == [world.relay.served_by_request[0][2]]
    [result] = image_messages(click)
    assert not result.ephemeral
    job = await world.bot.jobs.get(job_id_of(result))
    assert job is not None and job.source_message_id == message.id


async def test_the_picker_chooses_image_two_of_a_set_for_edit(world: World):
    slow_first_post(world.discord)
    messages, job_id = await imagine_result(world, count=3)
    message = holding(messages, job_id, 1)

    picked = await world.discord.click(message, f"sd:pick:{job_id}", values=["1"])
    reply = await private_reply(picked)
    opened = await world.discord.click(reply, button(reply, "edit"))
    assert (await opened.wait_callback()).data["title"] == "Edit image 2"
    edit = await world.discord.submit_modal(opened, {"prompt": "in watercolour"})
    await finished(edit)

    assert reference_bytes(world.relay.requests[1].body) == [world.relay.served_by_request[0][1]]


# -- Delete ---------------------------------------------------------------------------------------


async def test_the_requester_can_delete_a_result(world: World):
    [message], _ = await imagine_result(world)

    await world.discord.click(message, button(message, "delete"))

    await world.discord.wait_for(lambda: message.deleted, 10, what="the result to be deleted")


async def test_another_member_cannot_delete_a_result(world: World):
    [message], _ = await imagine_result(world)

    click = await world.discord.click(message, button(message, "delete"), user=world.discord.mod)
    reply = await private_reply(click)

    assert "Manage Messages" in reply.content
    assert not message.deleted


async def test_a_member_with_manage_messages_can_delete_any_result(world: World):
    fake = world.discord
    janitor_role = fake.add_role(fake.guild, "Janitor", permissions=MANAGE_MESSAGES)
    janitor = fake.add_user("janitor")
    fake.add_member(fake.guild, janitor, roles=[janitor_role])
    [message], _ = await imagine_result(world)

    await fake.click(message, button(message, "delete"), user=janitor)

    await fake.wait_for(lambda: message.deleted, 10, what="the result to be deleted")


# -- after a restart ------------------------------------------------------------------------------


async def test_every_control_works_after_the_bot_restarts(boot, fake_discord, relay):
    async with boot():
        single = await fake_discord.slash("imagine", {"prompt": "a red fox"})
        await finished(single)
        slow_first_post(fake_discord)
        triple = await fake_discord.slash("imagine", {"prompt": "three foxes", "count": 3})
        await finished(triple)
    [fox] = image_messages(single)
    fox_job, foxes_job = job_id_of(fox), job_id_of(image_messages(triple)[0])
    foxes = holding(image_messages(triple), foxes_job, 2)

    async with boot() as bot:
        reroll = await fake_discord.click(fox, button(fox, "reroll"))
        await finished(reroll)
        assert relay.requests[-1].body["prompt"] == "a red fox"

        opened = await fake_discord.click(fox, button(fox, "edit"))
        edit = await fake_discord.submit_modal(opened, {"prompt": "a red fox at night"})
        await finished(edit)
        assert reference_bytes(relay.requests[-1].body) == [fox.files[0][1]]

        upscale = await fake_discord.click(fox, button(fox, "upscale"))
        await finished(upscale)
        assert relay.requests[-1].body["size"] == "4096x4096"

        picked = await fake_discord.click(foxes, f"sd:pick:{foxes_job}", values=["2"])
        reply = await private_reply(picked)
        upscale_third = await fake_discord.click(reply, button(reply, "upscale"))
        await finished(upscale_third)
        assert reference_bytes(relay.requests[-1].body) == [relay.served_by_request[1][2]]

        refused = await fake_discord.click(fox, button(fox, "delete"), user=fake_discord.mod)
        assert "Manage Messages" in (await private_reply(refused)).content
        await fake_discord.click(fox, button(fox, "delete"))
        await fake_discord.wait_for(lambda: fox.deleted, 10, what="the result to be deleted")

        kinds = [(await bot.jobs.get(job_id_of(image_messages(i)[0]))).kind
                 for i in (reroll, edit, upscale, upscale_third)]
        assert kinds == ["reroll", "edit", "upscale", "upscale"]
        assert fox_job != foxes_job


async def test_a_picker_answer_from_before_a_restart_still_works(boot, fake_discord, relay):
    async with boot():
        slow_first_post(fake_discord)
        triple = await fake_discord.slash("imagine", {"prompt": "three foxes", "count": 3})
        await finished(triple)
        job_id = job_id_of(image_messages(triple)[0])
        foxes = holding(image_messages(triple), job_id, 1)
        picked = await fake_discord.click(foxes, f"sd:pick:{job_id}", values=["1"])
        reply = await private_reply(picked)

    async with boot():
        opened = await fake_discord.click(reply, button(reply, "edit"))
        edit = await fake_discord.submit_modal(opened, {"prompt": "the second fox, in winter"})
        await finished(edit)

    assert reference_bytes(relay.requests[-1].body) == [relay.served_by_request[0][1]]


# -- /show ----------------------------------------------------------------------------------------


async def test_show_reposts_a_past_job_with_working_buttons(world: World):
    slow_first_post(world.discord)
    messages, job_id = await imagine_result(world, prompt="a harbour", count=3)
    original = [data for m in messages for _, data in m.files]

    show = await world.discord.slash("show", {"job": job_id})
    summary = await show.waiter.wait_for(
        lambda: next((m for m in show.messages if "posted again" in m.content), None), 15, what="/show's summary")

    assert summary.content == f"Job `{job_id}`: 3 images posted again."
    reposted = image_messages(show)
    assert [data for m in reposted for _, data in m.files] == original
    assert [len(m.files) for m in reposted] == [len(m.files) for m in messages]
    assert all(job_id_of(m) == job_id for m in reposted)
    second = holding(reposted, job_id, 1)
    assert second.id not in [m.id for m in messages]

    picked = await world.discord.click(with_picker(reposted), f"sd:pick:{job_id}", values=["1"])
    reply = await private_reply(picked)
    click = await world.discord.click(reply, button(reply, "upscale"))
    await finished(click)
    assert reference_bytes(world.relay.requests[-1].body) == [original[1]]


async def test_show_of_an_unknown_job_answers_privately(world: World):
    show = await world.discord.slash("show", {"job": "zzzzzzzz"})
    reply = await private_reply(show)

    assert "I don't know a job `zzzzzzzz`" in reply.content
    assert not world.relay.requests


async def test_show_says_when_the_images_are_gone(world: World):
    [message], job_id = await imagine_result(world)
    await world.discord.click(message, button(message, "delete"))
    await world.discord.wait_for(lambda: message.deleted, 10, what="the result to be deleted")

    show = await world.discord.slash("show", {"job": job_id})
    reply = await private_reply(show)

    assert "are gone" in reply.content
    assert not image_messages(show)


async def test_show_finds_the_images_in_its_own_re_post_once_the_originals_are_deleted(world: World):
    [message], job_id = await imagine_result(world)
    first_show = await world.discord.slash("show", {"job": job_id})
    await first_show.waiter.wait_for(
        lambda: next((m for m in first_show.messages if "posted again" in m.content), None), 15, what="the re-post")
    await world.discord.click(message, button(message, "delete"))
    await world.discord.wait_for(lambda: message.deleted, 10, what="the original to be deleted")

    second_show = await world.discord.slash("show", {"job": job_id})
    summary = await second_show.waiter.wait_for(
        lambda: next((m for m in second_show.messages if "posted again" in m.content), None), 15,
        what="the second /show")

    assert summary.content == f"Job `{job_id}`: 1 image posted again."
    assert [data for m in image_messages(second_show) for _, data in m.files] == \
        [data for _, data in message.files]


async def test_an_edit_by_reply_to_a_re_post_records_the_job_it_came_from(boot, fake_discord, relay):
    async with boot() as bot:
        single = await fake_discord.slash("imagine", {"prompt": "a red fox"})
        await finished(single)
        [fox] = image_messages(single)
        parent = job_id_of(fox)
        await harness.settled(bot.jobs, parent)
        show = await fake_discord.slash("show", {"job": parent})
        await show.waiter.wait_for(
            lambda: next((m for m in show.messages if "posted again" in m.content), None), 15, what="the re-post")
        [repost] = image_messages(show)
        relay.hold_after = 0  # the edit stays running while the test reads it
        await fake_discord.user_message(fake_discord.general, fake_discord.alice,
                                        f"{fake_discord.bot_user.mention} now at night", reply_to=repost)
        await fake_discord.wait_for(lambda: len(relay.requests) == 2 or None, 15, what="the edit at the relay")
        [child] = [job for job in await bot.jobs.unfinished() if job.kind == "edit"]
        relay.release.set()

    assert child.parent_job_id == parent and child.source_message_id == repost.id
