"""Result follow-ups are retried by the runner, which first looks whether the post landed.

discord.py retries a webhook request answered 5xx by itself, up to five times, before its caller
hears of it. For a follow-up that carries images that is wrong: Discord may have created the
message and lost only its answer, and a blind repeat posts the images twice. This trace, given to
discord.py as part of `http_trace`, turns a 5xx answer to a follow-up post into the caller's error
at once; the runner's retry (bot/core/jobs/runner.py) then finds the landed post instead of
repeating it. Channel posts need none of this: they carry a nonce Discord deduplicates on.
"""

from __future__ import annotations

import re

import aiohttp
import discord

FOLLOW_UP = re.compile(r"/webhooks/\d+/[^/]+/?$")


async def _on_request_end(_session: aiohttp.ClientSession, _context: object,
                          params: aiohttp.TraceRequestEndParams) -> None:
    response = params.response
    if params.method == "POST" and response.status >= 500 and FOLLOW_UP.search(params.url.path):
        data = await response.text()
        response.release()
        raise discord.DiscordServerError(response, data)


def no_blind_follow_up_retries(trace: aiohttp.TraceConfig) -> aiohttp.TraceConfig:
    """`trace`, now also failing follow-up posts answered 5xx at once (see the module docstring)."""
    trace.on_request_end.append(_on_request_end)
    return trace
