"""Midjourney-style flags in the prompt, end to end: /imagine, /blend, the edit modals and reply edits."""

from __future__ import annotations

from tests.e2e.conftest import World
from tests.e2e.test_imagine_errors import FLAG_EPHEMERAL
from tests.e2e.test_references import (
    GREEN,
    RED,
    finished,
    imagine_result,
    nothing_charged,
    private_answer,
    reply_answer,
    reply_result,
)
from tests.e2e.test_results import button


async def test_imagine_reads_the_flags_and_sends_the_prompt_without_them(world: World):
    interaction = await world.imagine(prompt="a fox in the snow --ar 16:9 --n 2 --4k --watermark")
    summary = await finished(interaction)

    assert summary.content.startswith("✅"), summary.content
    [request] = world.relay.requests
    body = request.body
    assert body["prompt"] == "a fox in the snow"
    assert body["size"] == "5456x3072"  # 16:9 at 4K's pixel budget
    assert body["sequential_image_generation_options"] == {"max_images": 2}
    assert body["watermark"] is True


async def test_a_slash_option_wins_over_a_flag_and_a_tier_option_combines_with_ar(world: World):
    interaction = await world.imagine(prompt="a fox --ar 9:16 --2k --no-watermark", size="1K", watermark=True)
    await finished(interaction)

    body = world.relay.requests[0].body
    assert body["size"] == "768x1360"  # 9:16 at 1K: the option's tier, the flag's ratio
    assert body["watermark"] is True


async def test_an_unknown_flag_is_refused_privately_with_what_is_allowed_and_costs_nothing(world: World):
    interaction = await world.imagine(prompt="a fox --v 6 --stylize 250")
    callback = await interaction.wait_callback()

    assert callback.type == 4 and callback.data["flags"] & FLAG_EPHEMERAL
    text = callback.data["content"]
    assert "I don't know the option `--v`" in text
    assert "`--ar W:H`" in text and "`--n N`" in text and "`--4k`" in text and "`--size WxH`" in text
    assert world.relay.requests == []
    await nothing_charged(world)


async def test_a_bad_flag_value_is_refused_privately(world: World):
    interaction = await world.imagine(prompt="a fox --n 40")
    callback = await interaction.wait_callback()

    assert callback.data["flags"] & FLAG_EPHEMERAL and "1 to 15" in callback.data["content"]
    assert world.relay.requests == []


async def test_blend_reads_flags(world: World):
    fake = world.discord
    interaction = await fake.slash("blend", {"prompt": "the two together --ar 1:1 --1k --n 2",
                                             "image1": ("a.png", RED), "image2": ("b.png", GREEN)})
    await finished(interaction)

    body = world.relay.requests[0].body
    assert (body["prompt"], body["size"]) == ("the two together", "1024x1024")
    assert body["sequential_image_generation_options"] == {"max_images": 2}


async def test_the_edit_with_seedream_modal_reads_flags(world: World):
    fake = world.discord
    posted = await fake.user_message(fake.general, fake.alice, "cat", attachments=[("cat.png", RED)])
    opened = await fake.context_menu("Edit with Seedream", posted)
    submitted = await fake.submit_modal(opened, {"prompt": "add a hat --ar 4:3"})
    await finished(submitted)

    body = world.relay.requests[0].body
    assert (body["prompt"], body["size"]) == ("add a hat", "2368x1776")


async def test_the_edit_button_modal_refuses_an_unknown_flag_privately(world: World):
    message = await imagine_result(world)
    opened = await world.discord.click(message, button(message, "edit"))
    submitted = await world.discord.submit_modal(opened, {"prompt": "make it night --chaos 50"})

    assert "`--chaos`" in await private_answer(world.discord, submitted)
    assert len(world.relay.requests) == 1


async def test_the_edit_button_modal_reshapes_the_original_with_ar(world: World):
    message = await imagine_result(world)
    opened = await world.discord.click(message, button(message, "edit"))
    submitted = await world.discord.submit_modal(opened, {"prompt": "make it night --ar 21:9 --4k"})
    await finished(submitted)

    assert world.relay.requests[1].body["size"] == "6240x2672"


async def test_a_reply_edit_reads_flags_and_refuses_unknown_ones_in_a_reply(world: World):
    fake = world.discord
    upload = await fake.user_message(fake.general, fake.mod, "cat", attachments=[("cat.png", RED)])
    good = await fake.user_message(fake.general, fake.alice, f"{fake.bot_user.mention} add a hat --1k",
                                   reply_to=upload)
    await reply_result(fake, good)
    bad = await fake.user_message(fake.general, fake.alice, f"{fake.bot_user.mention} add a hat --q 2",
                                  reply_to=upload)
    answer = await reply_answer(fake, bad)

    [request] = world.relay.requests
    assert (request.body["prompt"], request.body["size"]) == ("add a hat", "1K")
    assert "I don't know the option `--q`" in answer.content and not answer.files
