"""The one place that turns a member's options into a validated GenerationRequest."""

from __future__ import annotations

from collections.abc import Sequence

from bot.config import Settings
from bot.core.images.sizes import parse_size
from bot.core.limits import MAX_IMAGES
from bot.core.relay.errors import InvalidRequest
from bot.core.relay.identity import opaque_user_id
from bot.core.relay.models import GenerationRequest


def build_request(
    settings: Settings,
    *,
    prompt: str,
    requester_id: int,
    size: str | None = None,
    count: int = 1,
    watermark: bool | None = None,
    references: Sequence[str] = (),
) -> GenerationRequest:
    """Validate options without any I/O; raises InvalidRequest with a message for the member."""
    prompt = prompt.strip()
    if not prompt:
        raise InvalidRequest("Please describe the image you want: the prompt is empty.")
    if len(prompt) > settings.max_prompt_length:
        raise InvalidRequest(
            f"Your prompt is {len(prompt):,} characters long; the limit is {settings.max_prompt_length:,}. "
            "Please shorten it."
        )
    if not 1 <= count <= MAX_IMAGES:
        raise InvalidRequest(f"`count` must be between 1 and {MAX_IMAGES}.")
    if references and count + len(references) > MAX_IMAGES:
        allowed = MAX_IMAGES - len(references)
        raise InvalidRequest(
            f"With {len(references)} reference image(s) you can ask for at most {allowed} image(s): "
            f"references plus results may not exceed {MAX_IMAGES}."
        )
    return GenerationRequest(
        prompt=prompt,
        size=parse_size(size or settings.default_size),
        count=count,
        watermark=settings.default_watermark if watermark is None else watermark,
        references=tuple(references),
        user=opaque_user_id(requester_id, (settings.user_id_secret or settings.image_api_key).get_secret_value()),
    )
