"""Relay error bodies map to typed errors: by code, then message, then HTTP status."""

from __future__ import annotations

import email.utils
import json
import time

import pytest

from bot.core.relay.classify import classify_item_error, classify_response, parse_retry_after
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
from tests.fakes.fake_relay import ark_error, new_api_error


def body(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "InvalidParameter", InvalidRequest),
        (400, "InvalidParameter.Size", InvalidRequest),
        (400, "MissingParameter", InvalidRequest),
        (401, "AuthenticationError", AuthenticationFailed),
        (403, "AccountOverdueError", QuotaExhausted),
        (429, "QuotaExceeded", QuotaExhausted),
        (429, "SetLimitExceeded", QuotaExhausted),
        (403, "insufficient_user_quota", QuotaExhausted),
        (429, "ModelAccountIpmRateLimitExceeded", RateLimited),
        (429, "RateLimitExceeded.EndpointRPMExceeded", RateLimited),
        (429, "RequestBurstTooFast", RateLimited),
        (500, "InternalServiceError", ServerError),
        (429, "ServerOverloaded", ServerError),
        (404, "InvalidEndpointOrModel.NotFound", InvalidRequest),
        # the code wins over a misleading status
        (500, "InvalidParameter", InvalidRequest),
        (200, "InputTextSensitiveContentDetected", ContentBlocked),
    ],
)
def test_code_decides_the_class(status: int, code: str, expected: type[SeedreamError]) -> None:
    error = classify_response(status, body(ark_error(code)))
    assert type(error) is expected
    assert error.code == code
    assert error.status == status


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("InputTextSensitiveContentDetected", "input_text"),
        ("SensitiveContentDetected", "input_text"),
        ("SensitiveContentDetected.SevereViolation", "input_text"),
        ("InputTextRiskDetection", "input_text"),
        ("InputImageSensitiveContentDetected", "input_image"),
        ("InputImageSensitiveContentDetected.PrivacyInformation", "input_image"),
        ("InputImageRiskDetection", "input_image"),
        ("OutputImageSensitiveContentDetected", "output_image"),
        ("OutputImageRiskDetection", "output_image"),
    ],
)
def test_moderation_codes_give_the_blocked_kind(code: str, kind: str) -> None:
    error = classify_response(400, body(ark_error(code)))
    assert isinstance(error, ContentBlocked)
    assert error.kind == kind
    assert "safety filter" in error.user_message


def test_privacy_subcode_is_explained() -> None:
    error = classify_response(400, body(ark_error("InputImageSensitiveContentDetected.PrivacyInformation")))
    assert "real person" in error.user_message


def test_invalid_parameter_message_is_friendly_and_has_no_request_id() -> None:
    error = classify_response(
        400,
        body(
            ark_error(
                "InvalidParameter",
                "The parameter `size` specified in the request is not valid: image size must be at least "
                "3686400 pixels.",
                param="size",
            )
        ),
    )
    assert isinstance(error, InvalidRequest)
    assert "`size`" in error.user_message
    assert "3686400 pixels" in error.user_message
    assert "request id" not in error.user_message.lower()
    assert "0217" not in error.user_message


def test_new_api_envelope_is_understood() -> None:
    error = classify_response(403, body(new_api_error("用户额度不足", "insufficient_user_quota")))
    assert isinstance(error, QuotaExhausted)
    error = classify_response(401, body(new_api_error("无效的令牌", "")))
    assert isinstance(error, AuthenticationFailed)


def test_upstream_error_nested_in_the_relay_message_is_used() -> None:
    inner = json.dumps(ark_error("OutputImageSensitiveContentDetected", "The output image may be sensitive."))
    outer = {
        "error": {"message": f"upstream error: {inner}", "type": "upstream_error", "code": "bad_response"}
    }
    error = classify_response(400, body(outer))
    assert isinstance(error, ContentBlocked)
    assert error.kind == "output_image"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("The request failed because the output image may contain sensitive information.", ContentBlocked),
        ("IPM (Images Per Minute) limit of the model is exceeded", RateLimited),
        ("You exceeded your current quota", QuotaExhausted),
    ],
)
def test_message_substrings_classify_when_the_code_is_unknown(message: str, expected: type) -> None:
    error = classify_response(
        400, body({"error": {"message": message, "type": "upstream_error", "code": ""}})
    )
    assert isinstance(error, expected)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, InvalidRequest),
        (401, AuthenticationFailed),
        (402, QuotaExhausted),
        (404, InvalidRequest),
        (429, RateLimited),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, RelayTimeout),
    ],
)
def test_status_decides_when_the_body_says_nothing(status: int, expected: type) -> None:
    error = classify_response(status, b"<html><body>Bad Gateway</body></html>")
    assert type(error) is expected
    assert "<html>" not in error.user_message


def test_plain_text_body_is_shown_cleaned() -> None:
    error = classify_response(400, b"prompt too long (request id: abc123)")
    assert isinstance(error, InvalidRequest)
    assert error.user_message.endswith("Prompt too long.")


def test_ok_status_with_unrecognised_error_is_a_plain_failure() -> None:
    error = classify_response(200, body({"error": {"message": "something odd"}}))
    assert type(error) is SeedreamError
    assert "something odd" in error.user_message.lower()


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= (parse_retry_after(date, now=now) or 0) <= 31
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


def test_rate_limit_carries_retry_after_from_headers() -> None:
    error = classify_response(429, body(ark_error("ModelAccountRpmRateLimitExceeded")), {"Retry-After": "12"})
    assert isinstance(error, RateLimited)
    assert error.retry_after == 12.0


def test_item_errors_classify_like_request_errors() -> None:
    error = classify_item_error({"code": "OutputImageSensitiveContentDetected", "message": "x"})
    assert isinstance(error, ContentBlocked) and error.kind == "output_image"
    assert isinstance(classify_item_error({"code": "InternalServiceError", "message": "x"}), ServerError)
    assert isinstance(classify_item_error(None), SeedreamError)


def test_key_echoed_in_an_error_is_redacted() -> None:
    key = "sk-live-abcdefghijklmnop"
    error = classify_response(
        400, body({"error": {"code": key, "message": f"Bad key {key} in header Bearer {key}"}}), secrets=[key]
    )
    assert key not in str(error) and key not in repr(error) and key not in error.user_message
    assert key not in (error.code or "")
