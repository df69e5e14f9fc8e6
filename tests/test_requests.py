"""The one place that validates options into a relay request."""

from __future__ import annotations

import pytest

from bot.config import load_settings
from bot.core.jobs.requests import build_request
from bot.core.relay.errors import InvalidRequest

MEMBER = 123456789012345678


def settings(**overrides):
    return load_settings(discord_token="t", image_api_key="relay-key", **overrides)


def test_the_relay_sees_a_stable_opaque_user_never_the_discord_id():
    first = build_request(settings(), prompt="a cat", requester_id=MEMBER)
    again = build_request(settings(), prompt="a dog", requester_id=MEMBER)
    other = build_request(settings(), prompt="a cat", requester_id=MEMBER + 1)
    assert first.user == again.user != other.user
    assert str(MEMBER) not in (first.user or "")


def test_a_user_id_secret_keeps_the_hash_stable_across_relay_keys():
    with_secret = build_request(settings(user_id_secret="pepper"), prompt="x", requester_id=MEMBER)
    rotated = build_request(load_settings(discord_token="t", image_api_key="new-key", user_id_secret="pepper"),
                            prompt="x", requester_id=MEMBER)
    assert with_secret.user == rotated.user
    assert with_secret.user != build_request(settings(), prompt="x", requester_id=MEMBER).user


def test_defaults_come_from_the_settings():
    request = build_request(settings(default_size="4k", default_watermark=True), prompt=" hi ", requester_id=1)
    assert (request.prompt, request.size, request.watermark, request.count) == ("hi", "4K", True, 1)


@pytest.mark.parametrize(("options", "words"), [
    ({"count": 16}, "between 1 and 15"),
    ({"count": 0}, "between 1 and 15"),
    ({"prompt": ""}, "empty"),
    ({"references": ("data:image/png;base64,AA",) * 3, "count": 13}, "at most 12"),
])
def test_bad_options_are_refused_with_what_is_allowed(options, words):
    values = {"prompt": "a cat", **options}
    with pytest.raises(InvalidRequest) as refused:
        build_request(settings(), requester_id=1, **values)
    assert words in refused.value.user_message
