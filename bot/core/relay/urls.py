"""Which result URLs the bot may fetch: the relay names them, so they are not trusted.

A URL is fetched only when it is `http(s)` and either on the relay's own origin (scheme, host
and port of `IMAGE_API_BASE_URL`, which may be on a private network), on a host listed in
`RESULT_URL_HOSTS` (trusted even where it resolves to a private address), or, when no list is
set, on a host whose every resolved address is public. Each redirect is checked again.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from bot.core.i18n import tr
from bot.core.relay.errors import MalformedResponse

DEFAULT_PORTS = {"http": 80, "https": 443}


class RefusedResultUrl(MalformedResponse):
    """The relay named an image link the bot will not fetch (private, unlisted or invalid)."""

    user_message = tr("The image service returned an image link the bot will not fetch.")


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int | None  # None: the scheme's default port

    def matches(self, url: URL) -> bool:
        port = self.port if self.port is not None else DEFAULT_PORTS.get(url.scheme)
        return (url.host or "").lower().rstrip(".") == self.host and url.port == port


def parse_hosts(text: str) -> tuple[HostPort, ...]:
    """`RESULT_URL_HOSTS`: comma-separated `host[:port]`; raises ValueError for a bad entry."""
    hosts = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            url = URL(f"http://{entry}")
            explicit = url.explicit_port
        except ValueError:
            raise ValueError(f"{entry!r} is not host[:port]") from None
        if not url.host or url.path not in ("", "/") or url.user or url.query_string:
            raise ValueError(f"{entry!r} is not host[:port]")
        hosts.append(HostPort(url.host.lower().rstrip("."), explicit))
    return tuple(hosts)


def _origin(url: URL) -> tuple[str, str, int | None]:
    return url.scheme, (url.host or "").lower().rstrip("."), url.port


def is_public(address: str) -> bool:
    """Whether an IP address is globally routable (not loopback, private, link-local, …)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class ResultUrlPolicy:
    def __init__(
        self, base_url: str, *, hosts: Sequence[HostPort] = (), resolver: AbstractResolver | None = None
    ) -> None:
        self._base = URL(base_url.rstrip("/") + "/")
        self._origin = _origin(self._base)
        self._hosts = tuple(hosts)
        self._resolver = resolver

    def resolve(self, url: str, against: URL | None = None) -> URL:
        """`url` made absolute (against the relay base, or the redirecting URL), or refused."""
        try:
            target = (against or self._base).join(URL(url))
            target.port  # noqa: B018 - raises ValueError for a port out of range
        except (ValueError, TypeError):
            raise RefusedResultUrl(tr("The image service returned an invalid image link.")) from None
        if target.scheme not in DEFAULT_PORTS or not target.host:
            raise RefusedResultUrl(tr("The image service returned an image link the bot cannot fetch."))
        return target

    async def check(self, url: URL) -> None:
        """Raise `RefusedResultUrl` unless `url` may be fetched."""
        if _origin(url) == self._origin:
            return
        if self._hosts:
            if any(host.matches(url) for host in self._hosts):
                return
            raise RefusedResultUrl(
                tr("The image service returned an image link on a host the bot does not fetch from."))
        host = (url.host or "").rstrip(".")
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = await self._addresses(host, url.port or 0)
        if not addresses or not all(is_public(address) for address in addresses):
            raise RefusedResultUrl(tr("The image service returned an image link to a private address."))

    async def _addresses(self, host: str, port: int) -> list[str]:
        if self._resolver is None:
            self._resolver = ThreadedResolver()
        try:
            found = await self._resolver.resolve(host, port, family=socket.AF_UNSPEC)
        except (OSError, ValueError):
            return []
        return [str(item["host"]) for item in found]
