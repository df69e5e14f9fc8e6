"""One result item (`url` or `b64_json`) -> the image's bytes, or that item's failure."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Mapping, Sequence

import aiohttp
from yarl import URL

from bot.core.format import megabytes
from bot.core.i18n import tr
from bot.core.images.reencode import decodes
from bot.core.images.sniff import sniff_content_type
from bot.core.relay.bodies import CONNECTION_ERRORS, off_loop, read_capped, remaining
from bot.core.relay.classify import classify_item_error, redact
from bot.core.relay.errors import MalformedResponse, SeedreamError, ServerError
from bot.core.relay.models import GeneratedImage, ImageEvent, ImageFailure
from bot.core.relay.urls import RefusedResultUrl, ResultUrlPolicy

log = logging.getLogger(__name__)

DOWNLOAD_ATTEMPTS = 2
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# What one result URL may raise besides a SeedreamError: it is that image's failure, never the set's.
_FETCH_ERRORS = (aiohttp.ClientError, ValueError, UnicodeError, OSError)


class DamagedImage(MalformedResponse):
    user_message = tr("The image service sent an image that is damaged or incomplete.")


class ImageFetcher:
    """Decodes inline images and downloads result URLs, each capped at `max_bytes`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        max_bytes: int,
        secrets: Sequence[str],
        policy: ResultUrlPolicy | None = None,
    ) -> None:
        self._session = session
        self._base_url = base_url
        self.max_bytes = max_bytes
        self._secrets = tuple(secrets)
        self._policy = policy or ResultUrlPolicy(base_url)

    def __repr__(self) -> str:  # never show the key
        return f"ImageFetcher(base_url={self._base_url!r}, max_bytes={self.max_bytes})"

    async def item_event(self, index: int, item: object, deadline: float) -> ImageEvent:
        """One `data[]` item or success event -> downloaded/decoded image, or its failure."""
        if not isinstance(item, Mapping):
            return ImageFailure(index, MalformedResponse("The image service sent an unreadable image entry."))
        url, b64 = item.get("url"), item.get("b64_json")
        if not url and not b64:
            if item.get("error") is not None:
                return ImageFailure(index, classify_item_error(item.get("error"), secrets=self._secrets))
            return ImageFailure(index, MalformedResponse("The image service returned an image without data."))
        try:
            content = await self._checked_content(url, b64, deadline)
            content_type = sniff_content_type(content)
        except SeedreamError as error:
            log.warning("image %d could not be fetched: %s", index, error)
            return ImageFailure(index, error)
        except TimeoutError:  # the request's deadline: the transport ends the set (RelayTimeout)
            raise
        except _FETCH_ERRORS as exc:
            log.warning("image %d could not be fetched: %s", index, redact(repr(exc), self._secrets))
            return ImageFailure(index, ServerError(tr("The generated image could not be downloaded.")))
        assert content_type is not None  # _checked_content only returns images
        return GeneratedImage(
            index=index,
            content=content,
            size=_normalize_reported_size(item.get("size")),
            content_type=content_type,
        )

    async def _checked_content(self, url: object, b64: object, deadline: float) -> bytes:
        """The image's bytes, only once they decode; a broken download is fetched once more."""
        attempts = DOWNLOAD_ATTEMPTS if isinstance(url, str) and not b64 else 1
        for _ in range(attempts):
            content = await self._content(url, b64, deadline)
            if sniff_content_type(content) is None:
                raise MalformedResponse(tr("The image service returned something that is not an image."))
            if await asyncio.to_thread(decodes, content):
                return content
            log.warning("a result image (%d bytes) does not decode", len(content))
        raise DamagedImage()

    async def _content(self, url: object, b64: object, deadline: float) -> bytes:
        if isinstance(b64, str) and b64:
            return await self._decode_b64(b64)
        if isinstance(url, str):
            return await self._download(url, deadline)
        raise MalformedResponse("The image service returned an image entry the bot could not read.")

    async def _decode_b64(self, text: str) -> bytes:
        if text.startswith("data:"):
            text = text.partition(",")[2]
        if len(text) * 3 // 4 > self.max_bytes + 3:
            raise self.too_large()
        try:
            content = await off_loop(_b64decode, text, len(text))
        except (binascii.Error, ValueError):
            raise MalformedResponse("The image service sent image data the bot could not decode.") from None
        if len(content) > self.max_bytes:
            raise self.too_large()
        return content

    async def _download(self, url: str, deadline: float) -> bytes:
        """Fetch a result URL through the same session, without the relay's API key."""
        target = self._policy.resolve(url)
        last: SeedreamError = ServerError(tr("The generated image could not be downloaded."))
        for attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                return await self._get(target, deadline)
            except ServerError as error:
                last = error
                if error.status is not None and (error.status < 500 or attempt + 1 == DOWNLOAD_ATTEMPTS):
                    raise
            except CONNECTION_ERRORS as exc:
                log.warning("image download failed: %s", redact(repr(exc), self._secrets))
                last = ServerError(tr("The generated image could not be downloaded."))
        raise last

    async def _get(self, url: URL, deadline: float) -> bytes:
        """One GET, following at most MAX_REDIRECTS redirects, each checked by the policy."""
        for _ in range(MAX_REDIRECTS + 1):
            await self._policy.check(url)
            timeout = aiohttp.ClientTimeout(total=remaining(deadline))
            async with self._session.get(url, timeout=timeout, allow_redirects=False) as resp:
                location = resp.headers.get("Location")
                if resp.status in _REDIRECTS and location:
                    url = self._policy.resolve(location, against=url)
                    continue
                if resp.status != 200:
                    raise ServerError(
                        tr("The generated image could not be downloaded (HTTP {status}).", status=resp.status),
                        status=resp.status
                    )
                length = resp.content_length
                if length is not None and length > self.max_bytes:
                    raise self.too_large()
                return await read_capped(resp, self.max_bytes, self.too_large)
        raise RefusedResultUrl(tr("The image service's image link redirected too many times."))

    def too_large(self) -> MalformedResponse:
        return MalformedResponse(
            tr("A generated image was larger than the bot accepts ({limit}).", limit=megabytes(self.max_bytes))
        )


def _b64decode(text: str) -> bytes:
    return base64.b64decode("".join(text.split()), validate=True)


def _normalize_reported_size(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return "".join(value.split()).replace("\u00d7", "x").replace("X", "x").replace("*", "x")
