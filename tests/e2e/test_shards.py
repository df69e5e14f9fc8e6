"""One process by default runs every shard Discord recommends; each shard hears only its guilds."""

from __future__ import annotations

from tests.e2e.conftest import BotStarter, World
from tests.e2e.test_imagine import finished
from tests.harness import StandardDiscord


async def test_without_shard_count_one_process_connects_discords_recommended_shards(
        boot: BotStarter, fake_discord: StandardDiscord) -> None:
    fake_discord.recommended_shards, fake_discord.max_concurrency = 3, 3
    guilds = [fake_discord.add_guild(f"Shard {i}", owner=fake_discord.owner, shard=(i, 3)) for i in range(3)]
    channels = [fake_discord.add_channel(guild, "art") for guild in guilds]
    for guild in guilds:
        fake_discord.add_member(guild, fake_discord.alice)

    async with boot() as bot:
        summaries = [await finished(await fake_discord.slash("imagine", {"prompt": f"shard {i}"}, channel=channel))
                     for i, channel in enumerate(channels)]
        shards = sorted(s.shard for s in fake_discord.sessions if s.identified and s.shard is not None)
        shard_count, connected = bot.shard_count, sorted(bot.shards)

    assert shards == [(0, 3), (1, 3), (2, 3)] and shard_count == 3 and connected == [0, 1, 2]
    assert all(summary.content.startswith("✅") for summary in summaries)
    for session in fake_discord.sessions:
        heard = {int(data["id"]) for event, data in session.dispatched if event == "GUILD_CREATE"}
        assert heard == {g.id for g in fake_discord.guilds.values() if session.owns(g.id)}


async def test_a_small_bot_runs_its_one_recommended_shard(world: World) -> None:
    [session] = [s for s in world.discord.sessions if s.identified]
    assert session.shard == (0, 1) and world.bot.shard_count == 1


async def test_a_gateway_url_override_is_kept_when_discord_names_the_shard_count(
        boot: BotStarter, fake_discord: StandardDiscord) -> None:
    fake_discord.advertised_gateway_url = "ws://127.0.0.1:9/gw"  # nothing listens there
    fake_discord.recommended_shards, fake_discord.max_concurrency = 2, 2
    async with boot() as bot:  # DISCORD_GATEWAY_URL is the fake's own /gw
        shards = sorted(s.shard for s in fake_discord.sessions if s.identified)
    assert shards == [(0, 2), (1, 2)] and bot.shard_count == 2


async def test_without_a_gateway_url_override_the_bot_connects_where_discord_says(
        boot: BotStarter, fake_discord: StandardDiscord) -> None:
    fake_discord.recommended_shards = 1
    async with boot(discord_gateway_url=None):
        [session] = [s for s in fake_discord.sessions if s.identified]
    assert session.shard == (0, 1)
