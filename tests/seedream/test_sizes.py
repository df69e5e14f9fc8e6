"""Size parsing, presets and autocomplete follow the Seedream 4.0 rules."""

from __future__ import annotations

import pytest

from bot.core.images.sizes import (
    MAX_PIXELS,
    MIN_PIXELS,
    SIZE_PRESETS,
    TIERS,
    InvalidSize,
    parse_size,
    size_pixels,
    suggest_sizes,
)
from bot.core.relay.errors import InvalidRequest


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2K", "2K"),
        ("1k", "1K"),
        (" 4k ", "4K"),
        ("2048x2048", "2048x2048"),
        ("1600x600", "1600x600"),
        ("2848X1600", "2848x1600"),
        ("2848 \u00d7 1600", "2848x1600"),
        ("2848*1600", "2848x1600"),
        ("  1280 x 720 ", "1280x720"),
        ("4096x4096", "4096x4096"),
        ("3840x240", "3840x240"),  # exactly 16:1 and exactly the pixel floor
        ("240x3840", "240x3840"),
        ("4096x256", "4096x256"),
        ("02048x02048", "2048x2048"),
    ],
)
def test_valid_sizes_are_normalized(typed: str, expected: str) -> None:
    assert parse_size(typed) == expected


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("800x800", "too small"),
        ("1279x720", "too small"),
        ("4097x4097", "too large"),
        ("4096x4097", "too large"),
        ("3841x240", "too narrow"),
        ("4112x256", "too narrow"),
        ("256x4112", "too narrow"),
        ("0x2048", "positive"),
        ("3K", "couldn't read"),
        ("big", "couldn't read"),
        ("2048x", "couldn't read"),
        ("2048x2048x2", "couldn't read"),
        ("-2048x2048", "couldn't read"),
        ("", "empty"),
        ("99999999x1", "couldn't read"),
    ],
)
def test_invalid_sizes_raise_with_the_rules_explained(typed: str, reason: str) -> None:
    with pytest.raises(InvalidSize) as caught:
        parse_size(typed)
    message = caught.value.user_message
    assert reason in message
    assert "1K, 2K or 4K" in message
    assert "921,600" in message and "16,777,216" in message
    assert "1:16 and 16:1" in message
    assert "2048x2048" in message  # an example
    assert isinstance(caught.value, InvalidRequest)


def test_junk_text_is_not_echoed_with_markdown() -> None:
    with pytest.raises(InvalidSize) as caught:
        parse_size("`@everyone` **big**")
    assert "@" not in caught.value.user_message
    assert "**" not in caught.value.user_message


def test_size_pixels_reads_wxh_only() -> None:
    assert size_pixels("2848x1600") == (2848, 1600)
    assert size_pixels("2848\u00d71600") == (2848, 1600)
    assert size_pixels("2K") is None
    assert size_pixels("nonsense") is None


def test_presets_start_with_the_tiers_in_order() -> None:
    assert [value for _, value in SIZE_PRESETS[:3]] == ["1K", "2K", "4K"]
    assert len({value for _, value in SIZE_PRESETS}) == len(SIZE_PRESETS)


@pytest.mark.parametrize(("label", "value"), SIZE_PRESETS)
def test_every_preset_is_valid_and_normalized(label: str, value: str) -> None:
    assert parse_size(value) == value
    assert len(label) <= 100  # Discord choice label limit
    dims = size_pixels(value)
    if value in TIERS:
        assert dims is None
        return
    assert dims is not None
    width, height = dims
    assert MIN_PIXELS <= width * height <= MAX_PIXELS
    assert width <= 16 * height and height <= 16 * width
    assert width % 16 == 0 and height % 16 == 0
    assert value in label


@pytest.mark.parametrize("ratio", ["1:1", "16:9", "9:16", "4:3", "3:4", "21:9"])
def test_each_ratio_has_a_2k_and_a_4k_preset(ratio: str) -> None:
    labels = [label for label, _ in SIZE_PRESETS if ratio in label]
    assert any("2K" in label for label in labels)
    assert any("4K" in label for label in labels)


def test_suggestions_without_text_list_presets() -> None:
    assert suggest_sizes("") == SIZE_PRESETS[:25]


def test_a_valid_typed_size_comes_first_normalized() -> None:
    suggestions = suggest_sizes("1600 X 600")
    assert suggestions[0] == ("1600x600", "1600x600")


def test_a_typed_preset_value_is_not_listed_twice() -> None:
    suggestions = suggest_sizes("2848x1600")
    values = [value for _, value in suggestions]
    assert values[0] == "2848x1600"
    assert values.count("2848x1600") == 1


def test_suggestions_filter_presets_by_text() -> None:
    values = [value for _, value in suggest_sizes("16:9")]
    assert values == ["2848x1600", "5504x3040"]
    portrait = [label for label, _ in suggest_sizes("portrait")]
    assert portrait and all("Portrait" in label for label in portrait)


def test_tier_typed_in_lowercase_is_suggested_first() -> None:
    assert suggest_sizes("4k")[0][1] == "4K"


def test_invalid_text_gives_filtered_or_no_suggestions() -> None:
    assert suggest_sizes("zzz") == []
    assert all(value != "800x800" for _, value in suggest_sizes("800x800"))
    assert len(suggest_sizes("x")) <= 25
