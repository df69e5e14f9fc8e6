"""One result item (`url` or `b64_json`) -> the image's bytes, or that item's failure."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping, Sequence
from urllib.parse import urljoin, urlsplit

import aiohttp

from bot.core.format import megabytes
from bot.core.i18n import tr
from bot.core.images.sniff import sniff_content_type
from bot.core.relay.bodies import CONNECTION_ERRORS, off_loop, read_capped, remaining
from bot.core.relay.classify import classify_item_error, redact
from bot.core.relay.errors import MalformedResponse, SeedreamError, ServerError
from bot.core.relay.models import GeneratedImage, ImageEvent, ImageFailure

log = logging.getLogger(__name__)

DOWNLOAD_ATTEMPTS = 2


class ImageFetcher:
    """Decodes inline images and downloads result URLs, each capped at `max_bytes`."""

    def __init__(
        self, session: aiohttp.ClientSession, *, base_url: str, max_bytes: int, secrets: Sequence[str]
    ) -> None:
        self._session = session
        self._base_url = base_url
        self.max_bytes = max_bytes
        self._secrets = tuple(secrets)

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
            content = await self._content(url, b64, deadline)
            content_type = sniff_content_type(content)
            if content_type is None:
                raise MalformedResponse("The image service returned something that is not an image.")
        except SeedreamError as error:
            log.warning("image %d could not be fetched: %s", index, error)
            return ImageFailure(index, error)
        return GeneratedImage(
            index=index,
            content=content,
            size=_normalize_reported_size(item.get("size")),
            content_type=content_type,
        )

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
        url = urljoin(self._base_url + "/", url)
        if urlsplit(url).scheme not in ("http", "https"):
            raise MalformedResponse("The image service returned an image link the bot cannot fetch.")
        last: SeedreamError = ServerError(tr("The generated image could not be downloaded."))
        for attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                timeout = aiohttp.ClientTimeout(total=remaining(deadline))
                async with self._session.get(url, timeout=timeout) as resp:
                    if resp.status != 200:
                        last = ServerError(
                            f"The generated image could not be downloaded (HTTP {resp.status}).",
                            status=resp.status,
                        )
                        if resp.status < 500 or attempt + 1 == DOWNLOAD_ATTEMPTS:
                            raise last
                        continue
                    length = resp.content_length
                    if length is not None and length > self.max_bytes:
                        raise self.too_large()
                    return await read_capped(resp, self.max_bytes, self.too_large)
            except CONNECTION_ERRORS as exc:
                log.warning("image download failed: %s", redact(repr(exc), self._secrets))
                last = ServerError(tr("The generated image could not be downloaded."))
        raise last

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
