"""Midjourney-style flags in the prompt: the parser, the ratio maths, and what wins over what."""

from __future__ import annotations

import pytest

from bot.config import load_settings
from bot.core.images.sizes import MAX_PIXELS, TIER_PIXELS, parse_size, size_for_ratio
from bot.core.jobs.flags import InvalidFlag, parse_flags
from bot.core.jobs.preferences import MemberPreferences
from bot.core.jobs.requests import build_request
from bot.core.relay.errors import InvalidRequest


def settings(**overrides):
    return load_settings(discord_token="t", image_api_key="k", **overrides)


def test_flags_are_read_and_taken_out_of_the_prompt():
    flags = parse_flags("a fox in the snow --ar 16:9 --n 4\n--4k  at dawn --no-watermark")
    assert flags.prompt == "a fox in the snow\nat dawn"
    assert (flags.ratio, flags.count, flags.size, flags.watermark) == ((16, 9), 4, "4K", False)


@pytest.mark.parametrize(("text", "expected"), [
    ("cat --count 3", {"count": 3}),
    ("cat --count=3", {"count": 3}),
    ("cat --size 2848x1600", {"size": "2848x1600"}),
    ("cat --size 2k", {"size": "2K"}),
    ("cat --1K", {"size": "1K"}),
    ("cat --watermark", {"watermark": True}),
    ("cat \u2014ar 3:2", {"ratio": (3, 2)}),  # a phone turned -- into an em dash
    ("cat --aspect 1:1", {"ratio": (1, 1)}),
    ("a well-known -- dash and x--y stay", {}),
])
def test_each_flag(text, expected):
    flags = parse_flags(text)
    for name in ("size", "ratio", "count", "watermark"):
        assert getattr(flags, name) == expected.get(name), name
    assert "--" not in flags.prompt or not expected


@pytest.mark.parametrize(("text", "words"), [
    ("cat --v 6", "I don't know the option `--v`"),
    ("cat --stylize 250", "I don't know the option `--stylize`"),
    ("cat --ar 16/9", "not an aspect ratio"),
    ("cat --ar 0:9", "not an aspect ratio"),
    ("cat --ar", "needs a value"),
    ("cat --n 16", "1 to 15"),
    ("cat --n four", "1 to 15"),
    ("cat --size huge", "couldn't read `huge`"),
    ("cat --2k --4k", "sets the size twice"),
    ("cat --size 2848x1600 --ar 1:1", "already sets the shape"),
])
def test_unknown_flags_and_bad_values_are_refused_with_what_is_allowed(text, words):
    with pytest.raises(InvalidFlag) as refused:
        parse_flags(text)
    assert words in refused.value.user_message
    assert "`--ar W:H`" in refused.value.user_message and "`--no-watermark`" in refused.value.user_message


@pytest.mark.parametrize("tier", ["1K", "2K", "4K"])
@pytest.mark.parametrize("ratio", [(1, 1), (16, 9), (9, 16), (4, 3), (3, 2), (21, 9), (7, 5), (16, 1), (1, 16)])
def test_ar_gives_the_exact_ratio_at_the_tiers_pixel_budget_within_the_models_limits(tier, ratio):
    size = size_for_ratio(*ratio, tier)
    width, height = map(int, size.split("x"))
    assert parse_size(size) == size  # the model accepts it
    assert abs(width / height / (ratio[0] / ratio[1]) - 1) <= 0.01
    assert abs(width * height / TIER_PIXELS[tier] - 1) <= 0.01
    assert width * height <= MAX_PIXELS


def test_ar_beyond_sixteen_to_one_is_refused():
    with pytest.raises(InvalidFlag, match="outside the aspect ratios"):
        build_request(settings(), prompt="cat --ar 17:1", requester_id=1)


def build(prompt, **options):
    preferences = options.pop("preferences", MemberPreferences())
    return build_request(settings(**options.pop("settings", {})), prompt=prompt, requester_id=1,
                         preferences=preferences, **options)


def test_ar_combines_with_a_tier_from_either_place():
    assert build("cat --ar 16:9", size="4K").size == "5456x3072"
    assert build("cat --ar 16:9 --4k").size == "5456x3072"
    assert build("cat --ar 16:9").size == "2736x1536"  # DEFAULT_SIZE is 2K
    assert build("cat --ar 16:9", preferences=MemberPreferences(size="1K")).size == "1360x768"


def test_a_slash_option_wins_over_a_flag_which_wins_over_the_member_and_the_server():
    preferences = MemberPreferences(size="1K", count=2, watermark=True)
    assert build("cat --4k --n 3 --no-watermark", size="2K", count=5, watermark=True,
                 preferences=preferences) == build("cat", size="2K", count=5, watermark=True)
    flagged = build("cat --4k --n 3 --no-watermark", preferences=preferences)
    assert (flagged.size, flagged.count, flagged.watermark) == ("4K", 3, False)
    member = build("cat", preferences=preferences, settings={"default_size": "4K"})
    assert (member.size, member.count, member.watermark) == ("1K", 2, True)
    server = build("cat", settings={"default_size": "4K", "default_watermark": True})
    assert (server.size, server.count, server.watermark) == ("4K", 1, True)
    assert build("cat --ar 1:1", size="2848x1600").size == "2848x1600"  # an explicit WxH has its shape


def test_a_prompt_of_only_flags_is_empty():
    with pytest.raises(InvalidRequest, match="empty"):
        build("--ar 16:9 --n 2")
