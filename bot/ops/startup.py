"""Start-up that explains itself: one line naming the address and the setting when something is unreachable.

- The database (DATABASE_URL) must answer before anything else: otherwise one line and exit 1
  (a supervisor such as Docker's restart policy starts the bot again; nothing can work without it).
- The relay (IMAGE_API_BASE_URL) is probed with `GET {base}/models`; unreachable or a rejected key
  is a warning only: Discord commands still answer, and jobs fail with a clear message until it is back.
- Discord (DISCORD_API_BASE_URL for login, the gateway for the connection) is retried with a
  capped exponential backoff, so a brief outage needs no restart loop. Only settings errors stop
  the process: a rejected token, a privileged intent the portal refuses, a REST base that answers
  but is not Discord's API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.config import Settings
from bot.storage.database import Database
from bot.storage.probe import database_answers

log = logging.getLogger(__name__)

# What an unreachable or failing endpoint raises (aiohttp's connection errors are OSErrors too).
UNREACHABLE = (OSError, aiohttp.ClientError, asyncio.TimeoutError, discord.GatewayNotFound, discord.DiscordServerError)
GATEWAY_API_VERSION = 10


class StartupError(Exception):
    """Something the bot needs cannot be used; the message is one line, safe to print."""


class Backoff:
    """Exponential delays: `first`, doubling, at most `cap` seconds."""

    def __init__(self, first: float = 1.0, cap: float = 60.0) -> None:
        self._cap = cap
        self._next = first

    def peek(self) -> float:
        """The delay `next()` will return."""
        return self._next

    def next(self) -> float:
        delay = self._next
        self._next = min(self._cap, delay * 2)
        return delay


def public_address(url: str | yarl.URL) -> str:
    """The URL without user name or password (a proxy URL may carry them)."""
    return str(yarl.URL(str(url)).with_user(None))


def database_address(database_url: str) -> str:
    """Where DATABASE_URL points, without its credentials: the SQLite file, or host:port/database."""
    url = make_url(database_url)
    if url.drivername.startswith("sqlite"):
        return url.database or ":memory:"
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def database_password(database_url: str) -> str:
    """DATABASE_URL's password ("" without one), for the log redaction."""
    return make_url(database_url).password or ""


def reason(error: BaseException) -> str:
    """A one-line reason for an error, without its traceback."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig
    if isinstance(error, asyncio.TimeoutError):
        return "no answer in time"
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


async def check_database(database_url: str, *, within: float = 10.0) -> None:
    """Raise `StartupError` unless the database answers `SELECT 1` within `within` seconds."""
    database = Database(database_url)
    try:
        await asyncio.wait_for(database_answers(database), within)
    except Exception as error:  # whatever the driver raises, the operator needs the same line
        raise StartupError(f"cannot reach the database at {database_address(database_url)} "
                           f"(DATABASE_URL): {reason(error)}") from None
    finally:
        await database.close()


async def probe_relay(settings: Settings, *, within: float = 5.0) -> bool:
    """Warn (one line) when the relay cannot be reached or rejects the key; True when it answered."""
    base = settings.image_api_base_url
    headers = {"Authorization": f"Bearer {settings.image_api_key.get_secret_value()}"}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within)) as session, \
                session.get(f"{base}/models", headers=headers, allow_redirects=False) as response:
            status = response.status
    except UNREACHABLE as error:
        log.warning("cannot reach the relay at %s (IMAGE_API_BASE_URL): %s; jobs fail until it answers",
                    public_address(base), reason(error))
        return False
    if status in (401, 403):
        log.warning("the relay at %s (IMAGE_API_BASE_URL) rejected IMAGE_API_KEY (HTTP %d); jobs fail until "
                    "the key is fixed", public_address(base), status)
    return True


async def _log_in(bot: discord.Client, settings: Settings, backoff: Backoff) -> bool:
    """Log in (REST, then the bot's setup); False after one line when Discord could not be reached."""
    try:
        await bot.login(settings.discord_token.get_secret_value())
    except UNREACHABLE as error:
        log.warning("cannot reach Discord at %s (DISCORD_API_BASE_URL): %s; retrying in %.0fs",
                    public_address(settings.discord_api_base_url), reason(error), backoff.peek())
        return False
    except discord.HTTPException as error:  # it answered, but not as Discord's API does: a wrong URL
        raise StartupError(f"{public_address(settings.discord_api_base_url)} (DISCORD_API_BASE_URL) answered "
                           f"HTTP {error.status} when logging in; is it Discord's API (or a proxy for it)?") from None
    return True


async def _gateway_answers(bot: discord.Client, settings: Settings, backoff: Backoff) -> bool:
    """Open (and close at once) a websocket to the gateway discord.py will use.

    discord.py retries a lost connection itself, but its very first connection attempt cannot
    fail gracefully (it then crashes on the missing socket); so the first one is checked here.
    """
    gateway = DiscordWebSocket.DEFAULT_GATEWAY
    url = gateway.with_query(v=GATEWAY_API_VERSION, encoding="json")
    try:
        socket = await asyncio.wait_for(bot.http.ws_connect(str(url)), 30)
        await socket.close()
    except UNREACHABLE as error:
        setting = "DISCORD_GATEWAY_URL" if settings.discord_gateway_url else "the Discord gateway"
        log.warning("cannot reach the Discord gateway at %s (%s): %s; retrying in %.0fs",
                    public_address(gateway), setting, reason(error), backoff.peek())
        return False
    return True


async def run_bot(settings: Settings, factory: Callable[[Settings], discord.Client], *,
                  backoff: Backoff | None = None) -> None:
    """Check the database and the relay, then run the bot until it is closed, retrying Discord.

    Raises `StartupError`, `discord.LoginFailure` or `discord.PrivilegedIntentsRequired` for
    what only the operator can fix.
    """
    await check_database(settings.database_url)
    await probe_relay(settings)
    backoff = backoff or Backoff()
    while True:
        async with factory(settings) as bot:
            if await _log_in(bot, settings, backoff):
                while not await _gateway_answers(bot, settings, backoff):
                    await asyncio.sleep(backoff.next())
                    if bot.is_closed():  # SIGTERM while waiting
                        await bot.close()
                        return
                await bot.connect()
                await bot.close()  # returns once a close begun elsewhere (SIGTERM) is complete
                return
        await asyncio.sleep(backoff.next())
