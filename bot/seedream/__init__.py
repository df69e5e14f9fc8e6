"""Seedream relay client: requests, typed errors, sizes and the streaming HTTP client."""

from bot.seedream.client import RelayConnectionError, SeedreamClient, sniff_content_type
from bot.seedream.errors import (
    AuthenticationFailed,
    ContentBlocked,
    InvalidRequest,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    RelayTimeout,
    SeedreamError,
    ServerError,
)
from bot.seedream.identity import opaque_user_id
from bot.seedream.models import GeneratedImage, GenerationRequest, GenerationUsage, ImageEvent, ImageFailure
from bot.seedream.sizes import SIZE_PRESETS, InvalidSize, parse_size, size_pixels, suggest_sizes

__all__ = [
    "SIZE_PRESETS",
    "AuthenticationFailed",
    "ContentBlocked",
    "GeneratedImage",
    "GenerationRequest",
    "GenerationUsage",
    "ImageEvent",
    "ImageFailure",
    "InvalidRequest",
    "InvalidSize",
    "MalformedResponse",
    "QuotaExhausted",
    "RateLimited",
    "RelayConnectionError",
    "RelayTimeout",
    "SeedreamClient",
    "SeedreamError",
    "ServerError",
    "opaque_user_id",
    "parse_size",
    "size_pixels",
    "sniff_content_type",
    "suggest_sizes",
]
