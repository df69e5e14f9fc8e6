"""A hostile or broken relay, end to end: refused URLs, broken images, echoed references (issue 12)."""

from __future__ import annotations

import base64
import sqlite3

from aiohttp import web

from tests.e2e.conftest import World
from tests.e2e.test_imagine import finished, image_messages
from tests.e2e.test_references import PHOTO
from tests.fakes.fake_relay import sized_jpeg
from tests.seedream.hostile import Listener


async def used(world: World) -> int:
    status = await world.bot.quota.status(world.discord.guild.id, world.discord.alice.id, [])
    return status.used


async def test_a_result_url_on_a_private_address_is_one_failed_image_and_not_charged(world: World):
    async with Listener() as metadata:
        world.relay.result_url = lambda index, real: f"{metadata.origin}/latest/meta-data/" if index == 1 else real
        interaction = await world.imagine(prompt="three views", count=3)
        summary = await finished(interaction)

    assert sum(len(m.files) for m in image_messages(interaction)) == 2
    assert "1 image failed: The image service returned an image link to a private address." in summary.content
    assert metadata.hits == []
    assert await used(world) == 2


async def test_a_truncated_result_is_fetched_again_then_failed_and_not_charged(world: World):
    whole = sized_jpeg(1, "64x64")
    world.relay.image_factory = lambda index, size: whole[: len(whole) // 3] if index == 1 else sized_jpeg(index, size)
    interaction = await world.imagine(prompt="three views", count=3)
    summary = await finished(interaction)

    posted = [data for m in image_messages(interaction) for _, data in m.files]
    assert len(posted) == 2 and whole[: len(whole) // 3] not in posted
    assert "1 image failed: The image service sent an image that is damaged or incomplete." in summary.content
    assert len(world.relay.asset_requests) == 4  # the broken one twice
    assert await used(world) == 2


async def test_a_relay_echoing_the_reference_shows_logs_and_stores_no_image_data(world: World, caplog):
    echoed = f"data:image/jpeg;base64,{base64.b64encode(PHOTO).decode()}"
    world.relay.fail_next(400, {"error": {"code": "InvalidParameter", "type": "invalid_request_error",
                                          "message": f"bad request: {{\"image\": \"{echoed}\"}}"}})
    interaction = await world.imagine(prompt="make it autumn", reference=("holiday.jpg", PHOTO, "image/jpeg"))
    summary = await finished(interaction)

    assert summary.content.startswith("❌")
    fragment = base64.b64encode(PHOTO).decode()[40:80]
    shown = " ".join([m.content for m in interaction.messages] + [str(m.embeds) for m in interaction.messages])
    assert fragment not in shown and "base64," not in shown
    assert fragment not in caplog.text
    with sqlite3.connect(world.database_url.removeprefix("sqlite:///")) as db:
        stored = [str(row) for table in ("jobs", "quota_ledger") for row in db.execute(f"SELECT * FROM {table}")]
    assert stored and not [row for row in stored if fragment in row or "base64," in row]


async def test_result_url_hosts_lets_the_bot_download_from_a_listed_host(boot, fake_discord, relay):
    async def image(request: web.Request) -> web.Response:
        return web.Response(body=sized_jpeg(9, "64x64"), content_type="image/jpeg")

    async with Listener(image) as cdn:
        relay.result_url = lambda index, real: f"{cdn.origin}/result.jpeg"
        async with boot(result_url_hosts=f"cdn.example.com,127.0.0.1:{cdn.port}"):
            interaction = await fake_discord.slash("imagine", {"prompt": "from the cdn"})
            summary = await finished(interaction)

    assert summary.content.startswith("✅")
    assert [data for m in image_messages(interaction) for _, data in m.files] == [sized_jpeg(9, "64x64")]
    assert cdn.hits == ["/result.jpeg"]
