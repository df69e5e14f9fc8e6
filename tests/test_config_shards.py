"""SHARD_COUNT / SHARD_IDS: which gateway shards this process connects, and its instance name."""

from __future__ import annotations

import socket

import pytest

from bot.config import ConfigError, Settings, instance_name, load_settings, parse_shard_ids


def settings(**values: object) -> Settings:
    return load_settings(discord_token="t", image_api_key="k", **values)


@pytest.mark.parametrize(("text", "count", "ids"), [
    ("0", 1, (0,)),
    ("0,1", 2, (0, 1)),
    ("0-3", 4, (0, 1, 2, 3)),
    ("0,2-3", 4, (0, 2, 3)),
    (" 3 , 1 - 2 ", 4, (1, 2, 3)),
    ("5", 6, (5,)),
])
def test_shard_ids_accept_lists_and_ranges(text, count, ids) -> None:
    assert parse_shard_ids(text, count) == ids


@pytest.mark.parametrize(("text", "count", "says"), [
    ("2", 2, "shard 2 is out of range: SHARD_COUNT=2 allows 0-1"),
    ("0-4", 4, "shard 4 is out of range"),
    ("3-1", 4, "runs backwards"),
    ("0,0", 2, "shard 0 is listed twice"),
    ("0-2,1", 4, "shard 1 is listed twice"),
    ("-1", 2, "is not a shard id"),
    ("a", 2, "is not a shard id"),
    ("0,", 2, "'' is not a shard id"),
    ("1.5", 2, "is not a shard id"),
])
def test_malformed_shard_ids_say_what_is_wrong(text, count, says) -> None:
    with pytest.raises(ValueError, match=says):
        parse_shard_ids(text, count)


def test_by_default_one_process_runs_discords_recommended_count_of_shards() -> None:
    config = settings()
    assert config.shard_count is None and config.shard_slice is None


def test_shard_ids_are_stored_in_canonical_form() -> None:
    config = settings(shard_count=8, shard_ids="3,0,1,2,6")
    assert config.shard_ids == "0-3,6" and config.shard_slice == (0, 1, 2, 3, 6)


def test_blank_shard_ids_mean_every_shard() -> None:
    assert settings(shard_count=2, shard_ids=" ").shard_slice is None


def test_shard_ids_without_shard_count_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"SHARD_IDS is invalid: .*needs SHARD_COUNT"):
        settings(shard_ids="0")


def test_shard_ids_beyond_shard_count_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"SHARD_IDS is invalid: .*shard 2 is out of range"):
        settings(shard_count=2, shard_ids="0-2")


def test_a_bad_shard_count_is_reported_once_not_as_a_missing_one() -> None:
    with pytest.raises(ConfigError) as error:
        settings(shard_count=0, shard_ids="0")
    assert "SHARD_COUNT is invalid" in str(error.value) and "SHARD_IDS" not in str(error.value)


def test_settings_read_shards_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("SHARD_COUNT", "4")
    monkeypatch.setenv("SHARD_IDS", "2-3")
    assert settings().shard_slice == (2, 3)


def test_instance_name_of_a_slice_is_the_host_and_its_shards(monkeypatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "worker")
    assert instance_name(settings()) == "worker"
    assert instance_name(settings(shard_count=4, shard_ids="2,3")) == "worker-shards-2-3"
    assert instance_name(settings(shard_count=4, shard_ids="2,3", instance_name="blue")) == "blue"


def test_instance_name_stays_within_120_characters_and_stable_for_a_scattered_slice(monkeypatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "h" * 200)
    scattered = ",".join(str(i) for i in range(0, 200, 2))
    first = instance_name(settings(shard_count=200, shard_ids=scattered))
    again = instance_name(settings(shard_count=200, shard_ids=scattered))
    other = instance_name(settings(shard_count=200, shard_ids="1"))
    assert len(first) <= 120 and first == again and first != other
    assert other.endswith("-shards-1") and len(other) == 120
