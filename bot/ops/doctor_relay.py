"""doctor's relay checks: `GET {base}/models` with the key (no image, no cost), and with
`--generate` one 1K image through the bot's own relay client, timed."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp

from bot.config import Settings
from bot.core.errors import UserFacingError
from bot.core.jobs.requests import build_request
from bot.core.relay.client import SeedreamClient
from bot.core.relay.errors import AuthenticationFailed, QuotaExhausted
from bot.core.relay.models import GeneratedImage, ImageFailure
from bot.ops.checks import CheckResult, fail, ok, skip, warn

TIMEOUT = aiohttp.ClientTimeout(total=20)
GENERATE_PROMPT = "A red apple on a white table, studio light"


def skipped(because: str) -> list[CheckResult]:
    return [skip("relay", because), skip("relay.generate", because)]


async def relay_checks(settings: Settings, session: aiohttp.ClientSession, *, generate: bool) -> list[CheckResult]:
    models, usable = await models_check(settings, session)
    if not generate:
        return [models, skip("relay.generate", "not asked for (doctor --generate makes one 1K image)")]
    if not usable:
        return [models, skip("relay.generate", "the relay check failed")]
    return [models, await generate_check(settings, session)]


async def models_check(settings: Settings, session: aiohttp.ClientSession) -> tuple[CheckResult, bool]:
    """The check, and whether generating can be tried (the relay answered and took the key)."""
    base = settings.image_api_base_url
    headers = {"Authorization": f"Bearer {settings.image_api_key.get_secret_value()}"}
    try:
        async with session.get(f"{base}/models", headers=headers, timeout=TIMEOUT) as response:
            status = response.status
            raw = await response.read() if status == 200 else b""
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        reason = str(error) or "no answer within 20 s"
        return fail("relay", f"cannot reach the relay at {base} (IMAGE_API_BASE_URL): {reason}",
                    "check the address and the network"), False
    if status in (401, 403):
        return fail("relay", f"the relay at {base} rejected IMAGE_API_KEY (HTTP {status})",
                    "check the key in the relay's dashboard"), False
    if status != 200:
        return fail("relay", f"the relay at {base} answered HTTP {status} to GET /models",
                    "check IMAGE_API_BASE_URL (OpenAI-style relays end in /v1)", status=status), True
    listed = _model_ids(raw)
    if listed and settings.image_model not in listed:
        return warn("relay", f"the relay at {base} accepts IMAGE_API_KEY but does not list "
                    f"IMAGE_MODEL={settings.image_model}", f"check the model id ({len(listed)} models listed)"), True
    return ok("relay", f"the relay at {base} answers and accepts IMAGE_API_KEY"), True


def _model_ids(raw: bytes) -> list[str]:
    """The ids of an OpenAI-style model list (`{"data": [{"id": …}, …]}`); none if it is not one."""
    try:
        body: Any = json.loads(raw)
    except ValueError:
        return []
    items = body.get("data") if isinstance(body, dict) else None
    return [str(item["id"]) for item in items or [] if isinstance(item, dict) and "id" in item]


async def generate_check(settings: Settings, session: aiohttp.ClientSession) -> CheckResult:
    client = SeedreamClient(
        session, base_url=settings.image_api_base_url, api_key=settings.image_api_key.get_secret_value(),
        model=settings.image_model, response_format=settings.image_response_format, stream=settings.image_stream,
        timeout=settings.relay_timeout_seconds, max_retries=0, max_download_bytes=settings.max_download_bytes,
        result_url_hosts=settings.result_hosts,
    )
    request = build_request(settings, prompt=GENERATE_PROMPT, requester_id=0, size="1K", count=1)
    started = time.monotonic()
    try:
        async for event in client.generate(request):
            if isinstance(event, ImageFailure):
                raise event.error
            if isinstance(event, GeneratedImage):
                seconds = time.monotonic() - started
                shown = f"{event.size}, " if event.size else ""
                return ok("relay.generate", f"one 1K image in {seconds:.1f} s ({shown}{len(event.content):,} bytes)",
                          seconds=round(seconds, 3))
    except UserFacingError as error:
        return fail("relay.generate", f"generating one 1K image failed: {operator_text(error)}",
                    "check the model id, the key's credit and the relay's status")
    return fail("relay.generate", "the relay answered without an image", "check IMAGE_MODEL and the relay")


def operator_text(error: UserFacingError) -> str:
    """The error in English, worded for the operator where the member's wording would mislead."""
    if isinstance(error, AuthenticationFailed):
        return "the relay rejected IMAGE_API_KEY"
    if isinstance(error, QuotaExhausted):
        return "the relay account is out of credit"
    text = error.localized(None)
    code = getattr(error, "code", None)
    return f"{text} ({code})" if code else text
