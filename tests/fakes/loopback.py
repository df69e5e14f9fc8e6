"""Serving a fake on loopback the way the real service takes a burst's connections."""

from __future__ import annotations

from aiohttp import web

# aiohttp's default listen backlog is 128: when a burst opened more connections at once, the
# kernel dropped the rest of the SYNs and the client retried them a second later, a delay the
# real Discord and relay do not add. The kernel caps this at net.core.somaxconn.
LISTEN_BACKLOG = 4096


async def serve_on_loopback(runner: web.AppRunner, port: int = 0) -> int:
    """Start `runner` on 127.0.0.1:`port` (0: any free port) and return the port it listens on."""
    await web.TCPSite(runner, "127.0.0.1", port, backlog=LISTEN_BACKLOG).start()
    return int(runner.addresses[0][1])
