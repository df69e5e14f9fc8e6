"""The one place that turns a member's options into a validated GenerationRequest.

Each setting is taken from the first place that has it: the slash option (or modal field), a flag
typed into the prompt (`flags.py`), the member's `/prefer` default, then the server's settings.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.config import Settings
from bot.core.i18n import tr
from bot.core.images.sizes import parse_size, size_for_ratio
from bot.core.jobs.flags import PromptFlags, parse_flags
from bot.core.jobs.preferences import NO_PREFERENCES, MemberPreferences
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
    count: int | None = None,
    watermark: bool | None = None,
    references: Sequence[str] = (),
    preferences: MemberPreferences = NO_PREFERENCES,
    variations: bool = False,
) -> GenerationRequest:
    """Validate options without any I/O; raises InvalidRequest with a message for the member.

    `size`, `count` and `watermark` are what the member chose explicitly (None: not chosen).
    """
    flags = parse_flags(prompt)
    prompt = flags.prompt
    if not prompt:
        raise InvalidRequest(tr("Please describe the image you want: the prompt is empty."))
    if len(prompt) > settings.max_prompt_length:
        raise InvalidRequest(
            tr("Your prompt is {length:,} characters long; the limit is {limit:,}. Please shorten it.",
               length=len(prompt), limit=settings.max_prompt_length)
        )
    count = next((c for c in (count, flags.count, preferences.count) if c is not None), 1)
    if watermark is None:
        watermark = flags.watermark if flags.watermark is not None else preferences.watermark
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
        size=resolve_size(size, flags, preferences.size or settings.default_size),
        count=count,
        watermark=settings.default_watermark if watermark is None else watermark,
        references=tuple(references),
        variations=variations and count > 1,
        user=opaque_user_id(requester_id, (settings.user_id_secret or settings.image_api_key).get_secret_value()),
    )


def resolve_size(chosen: str | None, flags: PromptFlags, default: str) -> str:
    """The size to ask for: the option, else the flags' size, else `default`; `--ar` reshapes a tier
    (or the default) to its ratio at that pixel budget. An explicit `WxH` already has a shape and wins."""
    base = parse_size(chosen) if chosen else flags.size
    if base is not None and (flags.ratio is None or "x" in base):
        return base
    base = base or parse_size(default)
    return size_for_ratio(*flags.ratio, base) if flags.ratio else base
