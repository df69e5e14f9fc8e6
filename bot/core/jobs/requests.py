"""The one place that turns a member's options into a validated GenerationRequest."""

from __future__ import annotations

from collections.abc import Sequence

from bot.config import Settings
from bot.core.i18n import tr
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
        raise InvalidRequest(tr("Please describe the image you want: the prompt is empty."))
    if len(prompt) > settings.max_prompt_length:
        raise InvalidRequest(
            tr("Your prompt is {length:,} characters long; the limit is {limit:,}. Please shorten it.",
               length=len(prompt), limit=settings.max_prompt_length)
        )
    if not 1 <= count <= MAX_IMAGES:
        raise InvalidRequest(tr("`count` must be between 1 and {max}.", max=MAX_IMAGES))
    if references and count + len(references) > MAX_IMAGES:
        allowed = MAX_IMAGES - len(references)
        raise InvalidRequest(
            tr("With {references} reference image(s) you can ask for at most {allowed} image(s): "
               "references plus results may not exceed {max}.", references=len(references), allowed=allowed,
               max=MAX_IMAGES)
        )
    return GenerationRequest(
        prompt=prompt,
        size=parse_size(size or settings.default_size),
        count=count,
        watermark=settings.default_watermark if watermark is None else watermark,
        references=tuple(references),
        user=opaque_user_id(requester_id, (settings.user_id_secret or settings.image_api_key).get_secret_value()),
    )
