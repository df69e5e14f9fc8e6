"""The fake gateway's sharding: a session that IDENTIFYs as shard [id, count] hears only its guilds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.discord_gateway import GatewaySession
from tests.fakes.discord_state import (
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
)
from tests.harness import StandardDiscord, running_fake

INTENTS = INTENT_GUILDS | INTENT_GUILD_MESSAGES | INTENT_DIRECT_MESSAGES | INTENT_MESSAGE_CONTENT


@pytest.fixture
async def fake() -> AsyncIterator[StandardDiscord]:
    async with running_fake() as running:
        yield running


async def identify(http: aiohttp.ClientSession, fake: StandardDiscord,
                   shard: list[int] | None) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(fake.gateway_url)
    hello = json.loads((await ws.receive()).data)
    assert hello["op"] == 10
    data = {"token": fake.token, "intents": INTENTS, "properties": {}, **({"shard": shard} if shard else {})}
    await ws.send_str(json.dumps({"op": 2, "d": data}))
    return ws


async def test_gateway_bot_reports_the_recommended_shards_and_session_start_limit(fake: StandardDiscord) -> None:
    fake.recommended_shards, fake.max_concurrency = 4, 2
    async with aiohttp.ClientSession() as http, http.get(f"{fake.api_base}/gateway/bot") as response:
        body = await response.json()
    assert body["shards"] == 4 and body["session_start_limit"]["max_concurrency"] == 2
    assert body["url"] == fake.gateway_url


async def test_each_shard_hears_its_own_guilds_and_only_shard_zero_hears_dms(fake: StandardDiscord) -> None:
    on_zero = fake.add_guild("Zero", owner=fake.owner, shard=(0, 2))
    on_one = fake.add_guild("One", owner=fake.owner, shard=(1, 2))
    zero_channel, one_channel = fake.add_channel(on_zero, "a"), fake.add_channel(on_one, "b")
    async with aiohttp.ClientSession() as http:
        sockets = [await identify(http, fake, [0, 2]), await identify(http, fake, [1, 2])]
        zero, one = await fake.wait_for_shards([0, 1], 2)
        await fake.user_message(zero_channel, fake.alice, "on zero")
        await fake.user_message(one_channel, fake.alice, "on one")
        await fake.user_message(fake.dm_channel(fake.alice), fake.alice, "a dm")
        assert all(not ws.closed for ws in sockets)  # (kept open until here)

    def heard(session: GatewaySession, event: str, key: str) -> list[Any]:
        return [data[key] for name, data in session.dispatched if name == event]

    def on_shard(shard: int) -> set[str]:  # the standard guild is on either shard
        return {str(g.id) for g in fake.guilds.values() if (g.id >> 22) % 2 == shard}

    assert str(on_zero.id) in on_shard(0) and str(on_one.id) in on_shard(1)
    for session, shard in ((zero, 0), (one, 1)):
        [ready] = heard(session, "READY", "guilds")
        assert {g["id"] for g in ready} == on_shard(shard) == set(heard(session, "GUILD_CREATE", "id"))
        assert heard(session, "READY", "shard") == [[shard, 2]]
    assert heard(zero, "MESSAGE_CREATE", "content") == ["on zero", "a dm"]
    assert heard(one, "MESSAGE_CREATE", "content") == ["on one"]


async def test_a_session_without_a_shard_hears_everything(fake: StandardDiscord) -> None:
    on_one = fake.add_guild("One", owner=fake.owner, shard=(1, 2))
    async with aiohttp.ClientSession() as http:
        ws = await identify(http, fake, None)
        [session] = await fake.wait_until_connected()
        await fake.user_message(fake.add_channel(on_one, "b"), fake.alice, "anywhere")
        assert not ws.closed
    assert ("MESSAGE_CREATE" in {name for name, _ in session.dispatched}) and session.shard is None


async def test_an_impossible_shard_is_closed_with_4010(fake: StandardDiscord) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await identify(http, fake, [2, 2])
        closing = await ws.receive()
        while closing.type == aiohttp.WSMsgType.TEXT:
            closing = await ws.receive()
    assert ws.close_code == 4010


async def test_a_held_request_waits_until_released_and_can_be_dropped(fake: StandardDiscord) -> None:
    hold = fake.hold("POST", r"^/channels/\d+/messages$", after=1)
    url = f"{fake.api_base}/channels/{fake.general.id}/messages"
    headers = {"Authorization": f"Bot {fake.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(url, json={"content": "through"}) as first:
            assert first.status == 200
        held = asyncio.ensure_future(http.post(url, json={"content": "held"}))
        await fake.wait_for(lambda: hold.held)
        assert [m.content for m in fake.messages(fake.general)] == ["through"]
        hold.release(process=False)
        async with await held as dropped:
            assert dropped.status == 503
        async with http.post(url, json={"content": "after"}) as later:
            assert later.status == 200
    assert [m.content for m in fake.messages(fake.general)] == ["through", "after"]
