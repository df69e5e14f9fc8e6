"""The JSON body of `POST /images/generations` for one `GenerationRequest`.

A single image sends `sequential_image_generation: "disabled"` explicitly, like
`watermark`, so a relay or model whose default differs cannot turn it into a set.
"""

from __future__ import annotations

from typing import Literal

from bot.core.images.sizes import parse_size
from bot.core.limits import MAX_IMAGES
from bot.core.relay.errors import InvalidRequest
from bot.core.relay.models import GenerationRequest

ResponseFormat = Literal["url", "b64_json"]


def build_payload(
    request: GenerationRequest, *, model: str, response_format: ResponseFormat, stream: bool
) -> dict[str, object]:
    """The JSON body for one request; raises InvalidRequest for impossible requests."""
    _validate(request)
    payload: dict[str, object] = {
        "model": model,
        "prompt": request.prompt,
        "size": parse_size(request.size),
        "response_format": response_format,
        "watermark": request.watermark,
    }
    if request.references:
        refs = list(request.references)
        payload["image"] = refs[0] if len(refs) == 1 else refs
    if request.count > 1:
        payload["sequential_image_generation"] = "auto"
        payload["sequential_image_generation_options"] = {"max_images": request.count}
    else:
        payload["sequential_image_generation"] = "disabled"
    if stream:
        payload["stream"] = True
    if request.user:
        payload["user"] = request.user
    return payload


def _validate(request: GenerationRequest) -> None:
    if not request.prompt.strip():
        raise InvalidRequest("The prompt is empty.")
    if request.count < 1:
        raise InvalidRequest("At least one image must be requested.")
    if request.count + len(request.references) > MAX_IMAGES:
        raise InvalidRequest(
            f"Reference images plus requested images can be at most {MAX_IMAGES} "
            f"(asked for {request.count} with {len(request.references)} references)."
        )
