"""What the bot asks the relay for and what comes back, independent of the wire format."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.relay.errors import SeedreamError


@dataclass(frozen=True)
class GenerationRequest:
    """One call to `POST {base}/images/generations`.

    `size` is already validated (`1K`/`2K`/`4K` or `WxH`). `references` holds URLs or
    data URIs, in the order the prompt refers to them. `count` above 1 asks for an
    image set (`sequential_image_generation: auto`, `max_images: count`).
    """

    prompt: str
    size: str
    count: int = 1
    watermark: bool = False
    references: tuple[str, ...] = field(default=(), repr=False)  # data URIs can be megabytes
    user: str | None = None
    # `count` independent single-image requests instead of one set (bot/core/jobs/variations.py).
    variations: bool = False


@dataclass(frozen=True)
class GeneratedImage:
    """One finished image, already downloaded or decoded."""

    index: int
    content: bytes = field(repr=False)
    size: str | None = None  # "WxH" as reported by the relay, if it said
    content_type: str = "image/jpeg"


@dataclass(frozen=True)
class ImageFailure:
    """One image of a set that failed while others may still succeed."""

    index: int
    error: SeedreamError


ImageEvent = GeneratedImage | ImageFailure


@dataclass
class GenerationUsage:
    generated_images: int = 0
    extra: dict[str, object] = field(default_factory=dict)
