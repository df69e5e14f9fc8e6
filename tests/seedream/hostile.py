"""Helpers for hostile-relay tests: a loopback listener that records every hit, and a resolver."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Listener:
    """An HTTP server on 127.0.0.1 (another port than the relay) counting the requests it gets.

    `handler` answers them (default 200 with a tiny body): tests use it both as the target a
    hostile URL must never reach and as an odd image server listed in RESULT_URL_HOSTS.
    """

    def __init__(self, handler: Handler | None = None) -> None:
        self.hits: list[str] = []
        self._handler = handler
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _any(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path_qs)
        if self._handler is not None:
            return await self._handler(request)
        return web.Response(body=b"secret metadata", content_type="text/plain")

    async def __aenter__(self) -> Listener:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class MapResolver(AbstractResolver):
    """Resolves names from a dict (a public-looking name may point at a private address)."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        address = self.names.get(host)
        if address is None:
            raise OSError(f"no such host {host}")
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [
            ResolveResult(hostname=host, host=address, port=port, family=fam, proto=0, flags=socket.AI_NUMERICHOST)
        ]

    async def close(self) -> None:
        return None
