"""Turn relay error bodies into typed SeedreamErrors with friendly, secret-free messages.

Order of evidence: the error `code` (the outer one, then one nested
as JSON inside the message, as some relays do), then well-known message substrings, then
the HTTP status. Upstream Ark envelopes (`{"error":{"code","message","param","type"}}`),
new-api/one-api envelopes (`{"error":{"message","type","code"}}`), bare
`{"code","message"}` objects and non-JSON bodies are all understood.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Literal

from bot.core.i18n import Text, tr
from bot.core.relay.errors import (
    AuthenticationFailed,
    ContentBlocked,
    InvalidRequest,
    QuotaExhausted,
    RateLimited,
    RelayTimeout,
    SeedreamError,
    ServerError,
)

ContentKind = Literal["input_text", "input_image", "output_image"]

MAX_SHOWN_MESSAGE = 300
MAX_CODE_LENGTH = 80

_REQUEST_ID = re.compile(r"[(\[]?\s*\brequest[ _-]?id\b\s*[:=\uff1a]?\s*[\w.\-]+\s*[)\]]?\.?", re.IGNORECASE)
_TOKENISH = re.compile(r"(?i)\bbearer\s+\S+|\bsk-[A-Za-z0-9_\-]{6,}")
# A relay that echoes the request echoes the member's reference images: never show them.
_DATA_URI = re.compile(r"(?i)data:[\w.+/-]*(?:;[\w.+=-]+)*(?:;base64)?,[A-Za-z0-9+/=%\\]*")
_NAMED_SECRET = re.compile(
    r"(?i)\b(api[_-]?key|access[_-]?key|secret|token|password|authorization)(\"?\s*[:=]\s*\"?)[^\s\"',;}&]+"
)
# Base64 runs and key-like strings: long runs of token characters holding letters and digits.
_LONG_RUN = re.compile(r"(?<![\w+/=-])(?=[\w+/-]*\d)(?=[\w+/-]*[A-Za-z])[\w+/-]{32,}={0,2}")
_BAD_PARAMETER = re.compile(
    r"the parameter `?([\w.\[\]]+)`? specified in the request is not valid:?\s*(.*)",
    re.IGNORECASE | re.DOTALL,
)
_CODE_WORDS = re.compile(r"\b(ipm|rpm|tpm)\b", re.IGNORECASE)

_QUOTA_CODES = {
    "quotaexceeded",
    "setlimitexceeded",
    "accountoverdueerror",
    "operationdenied.serviceoverdue",
    "insufficient_user_quota",
    "insufficient_quota",
    "pre_consume_token_quota_failed",
    "quota_exceeded",
}
_THROTTLE_CODES = {
    "requestbursttoofast",
    "inflightbatchsizeexceeded",
    "rate_limit_exceeded",
    "rate_limit_error",
    "too_many_requests",
}
_AUTH_CODES = {
    "authenticationerror",
    "invalid_api_key",
    "invalid_token",
    "unauthorized",
    "accessdenied",
    "operationdenied",
}
_SERVER_CODES = {
    "internalserviceerror",
    "serveroverloaded",
    "internal_error",
    "internalerror",
    "server_error",
}
_MODEL_CODES = ("invalidendpoint", "modelnotopen", "unsupportedmodel", "model_not_found")
_CONTENT_CODES = {"contentsecuritydetectionerror", "content_filter", "content_policy_violation"}

_MODEL_UNAVAILABLE = tr(
    "The configured image model isn't available on the image service. Please tell the bot's owner."
)

_BLOCKED_MESSAGES: dict[ContentKind, Text] = {
    "input_text": tr("Your prompt was blocked by the image service's safety filter{detail}. Please rephrase it.",
                     detail=""),
    "input_image": tr("A reference image was blocked by the image service's safety filter{detail}.", detail=""),
    "output_image": tr("The generated image was blocked by the image service's safety filter{detail}.", detail=""),
}
_BLOCK_DETAILS = {
    "privacyinformation": tr(" (it seems to show a real person)"),
    "policyviolation": tr(" (it may infringe copyright)"),
}


@dataclass(frozen=True)
class RelayError:
    """The parts of a relay error envelope the classifier uses (raw, not yet redacted)."""

    code: str | None = None
    message: str | None = None
    type: str | None = None
    inner: RelayError | None = None  # upstream error nested as JSON text in `message`

    @property
    def codes(self) -> list[str]:
        found = [self.code] if self.code else []
        if self.inner is not None:
            found.extend(self.inner.codes)
        return found

    @property
    def best_message(self) -> str | None:
        if self.inner is not None and self.inner.best_message:
            return self.inner.best_message
        return self.message


def _text(value: object) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def error_from_object(value: object) -> RelayError | None:
    """The error described by a decoded JSON value, or None when it carries none."""
    if not isinstance(value, Mapping):
        return None
    error = value.get("error")
    if isinstance(error, Mapping):
        message = _text(error.get("message")) or _text(error.get("msg"))
        return RelayError(
            code=_text(error.get("code")),
            message=message,
            type=_text(error.get("type")),
            inner=_nested_error(message),
        )
    if isinstance(error, str) and error.strip():
        return RelayError(code=_text(value.get("code")), message=error.strip(), inner=_nested_error(error))
    if "code" in value and ("message" in value or "msg" in value) and "data" not in value:
        message = _text(value.get("message")) or _text(value.get("msg"))
        return RelayError(code=_text(value.get("code")), message=message, inner=_nested_error(message))
    detail = value.get("detail")
    if isinstance(detail, str) and detail.strip():
        return RelayError(message=detail.strip())
    return None


def _nested_error(message: str | None) -> RelayError | None:
    """Some relays wrap the upstream JSON body, as text, inside their own message."""
    if not message or "{" not in message:
        return None
    decoder = json.JSONDecoder()
    start = message.find("{")
    for _ in range(5):
        if start < 0:
            return None
        try:
            value, _end = decoder.raw_decode(message, start)
        except ValueError:
            start = message.find("{", start + 1)
            continue
        return error_from_object(value)
    return None


def error_from_body(body: bytes | str) -> RelayError | None:
    """Parse an error body: JSON envelope if possible, else short plain text (never HTML)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = text.strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if value is not None:
        return error_from_object(value)
    if text.startswith("<") or len(text) > 2000:
        return None  # an HTML error page or a dump: nothing worth showing
    return RelayError(message=text)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """`text` from the relay without secrets, keys, data URIs or long base64 runs."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _DATA_URI.sub("[image data]", text)
    text = _TOKENISH.sub("[redacted]", text)
    text = _NAMED_SECRET.sub(r"\1\2[redacted]", text)
    return _LONG_RUN.sub("[redacted]", text)


def friendly_relay_message(message: str | None, secrets: Sequence[str] = ()) -> str | None:
    """The relay's message without request ids or secrets, tidied for a member to read."""
    if not message:
        return None
    text = redact(_REQUEST_ID.sub("", message), secrets)
    text = " ".join(text.split())
    match = _BAD_PARAMETER.search(text)
    if match:
        param, rest = match.group(1), match.group(2).strip()
        text = f"the `{param}` value isn't valid" + (f": {rest}" if rest else "")
    text = text.strip(" .;:,")
    if not text:
        return None
    if len(text) > MAX_SHOWN_MESSAGE:
        text = text[: MAX_SHOWN_MESSAGE - 1].rstrip() + "…"
    return text[0].upper() + text[1:] + ("" if text.endswith(("?", "!", "…")) else ".")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    milliseconds = lowered.get("retry-after-ms")
    if milliseconds:
        try:
            value = float(milliseconds) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    return parse_retry_after(lowered.get("retry-after"))


def _content_kind(code: str) -> ContentKind:
    lowered = code.lower()
    if lowered.startswith("inputimage"):
        return "input_image"
    if lowered.startswith("outputimage"):
        return "output_image"
    return "input_text"


def _blocked(kind: ContentKind, code: str | None, status: int | None) -> ContentBlocked:
    lowered = (code or "").lower()
    detail: Text | str = next((detail for marker, detail in _BLOCK_DETAILS.items() if marker in lowered), "")
    message = _BLOCKED_MESSAGES[kind].with_params(detail=detail)
    return ContentBlocked(message, kind=kind, code=code, status=status)


def _by_code(
    code: str, status: int | None, shown: str | None, retry_after: float | None
) -> SeedreamError | None:
    lowered = code.lower()
    if lowered.startswith("invalidparameter") or lowered == "missingparameter":
        return _invalid(shown, code, status)
    if "sensitivecontent" in lowered or "riskdetection" in lowered or lowered in _CONTENT_CODES:
        return _blocked(_content_kind(code), code, status)
    if lowered in _QUOTA_CODES:
        return QuotaExhausted(code=code, status=status)
    if "ratelimitexceeded" in lowered or lowered in _THROTTLE_CODES:
        return RateLimited(retry_after=retry_after, code=code, status=status)
    if lowered in _AUTH_CODES or lowered.startswith("accessdenied"):
        return AuthenticationFailed(code=code, status=status)
    if lowered.startswith(_MODEL_CODES):
        return InvalidRequest(_MODEL_UNAVAILABLE, code=code, status=status)
    if lowered in _SERVER_CODES:
        return ServerError(code=code, status=status)
    return None


def _by_message(
    message: str, code: str | None, status: int | None, shown: str | None, retry_after: float | None
) -> SeedreamError | None:
    lowered = message.lower()
    if "sensitive" in lowered or "content_filter" in lowered or "safety system" in lowered:
        kind: ContentKind = "input_text"
        if "outputimage" in lowered or "output image" in lowered or "generated image" in lowered:
            kind = "output_image"
        elif "inputimage" in lowered or "input image" in lowered or "reference image" in lowered:
            kind = "input_image"
        return _blocked(kind, code, status)
    if "rate limit" in lowered or "too many requests" in lowered or _CODE_WORDS.search(message):
        return RateLimited(retry_after=retry_after, code=code, status=status)
    if "quota" in lowered or "insufficient balance" in lowered or "余额" in message or "额度" in message:
        return QuotaExhausted(code=code, status=status)
    if "无效的令牌" in message or "invalid token" in lowered or "api key" in lowered:
        return AuthenticationFailed(code=code, status=status)
    if "size" in lowered and ("not valid" in lowered or "invalid" in lowered):
        return _invalid(shown, code, status)
    return None


def _by_status(
    status: int | None, code: str | None, shown: str | None, retry_after: float | None
) -> SeedreamError:
    if status in (401, 403):
        return AuthenticationFailed(code=code, status=status)
    if status == 402:
        return QuotaExhausted(code=code, status=status)
    if status in (408, 504, 524):
        return RelayTimeout(code=code, status=status)
    if status == 429:
        return RateLimited(retry_after=retry_after, code=code, status=status)
    if status is not None and status >= 500:
        return ServerError(code=code, status=status)
    if status is not None and 400 <= status < 500:
        return _invalid(shown, code, status)
    # A 2xx (or unknown) answer that carries an error nobody recognises: not retried.
    message = tr("The image service failed: {detail}", detail=shown) if shown else None
    return SeedreamError(message, code=code, status=status)


def _invalid(shown: str | None, code: str | None, status: int | None) -> InvalidRequest:
    message = tr("The image service rejected the request: {detail}", detail=shown) if shown else None
    return InvalidRequest(message, code=code, status=status)


def classify(
    status: int | None,
    error: RelayError | None,
    *,
    retry_after: float | None = None,
    secrets: Sequence[str] = (),
) -> SeedreamError:
    """Map one relay error (request-level or per-image) to its typed exception."""
    error = error or RelayError()
    codes = [_safe_code(code, secrets) for code in error.codes]
    shown = friendly_relay_message(error.best_message, secrets)
    for code in codes:
        found = _by_code(code, status, shown, retry_after)
        if found is not None:
            return found
    first_code = codes[0] if codes else None
    raw_messages = [redact(m, secrets) for m in (error.best_message, error.message) if m]
    for message in raw_messages:
        found = _by_message(message, first_code, status, shown, retry_after)
        if found is not None:
            return found
    return _by_status(status, first_code, shown, retry_after)


def classify_response(
    status: int, body: bytes | str, headers: Mapping[str, str] | None = None, *, secrets: Sequence[str] = ()
) -> SeedreamError:
    """Classify a whole non-success HTTP answer (or a 200 whose body is only an error)."""
    return classify(
        status, error_from_body(body), retry_after=retry_after_from_headers(headers), secrets=secrets
    )


def classify_item_error(value: object, *, secrets: Sequence[str] = ()) -> SeedreamError:
    """Classify one image's `error` object inside a set (`data[].error`, `partial_failed`)."""
    if isinstance(value, Mapping):
        message = _text(value.get("message"))
        error = RelayError(code=_text(value.get("code")), message=message, inner=_nested_error(message))
    elif isinstance(value, str):
        error = RelayError(message=value)
    else:
        error = RelayError()
    return classify(None, error, secrets=secrets)


def _safe_code(code: str, secrets: Sequence[str]) -> str:
    return redact(code, secrets)[:MAX_CODE_LENGTH]
