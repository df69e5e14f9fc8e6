"""RESULT_URL_HOSTS: comma-separated host[:port], checked at start."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings


def test_result_url_hosts_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESULT_URL_HOSTS", "cdn.example.com, images.example.org:8443")

    settings = load_settings(discord_token="t", image_api_key="k")

    assert [(host.host, host.port) for host in settings.result_hosts] == [
        ("cdn.example.com", None),
        ("images.example.org", 8443),
    ]


def test_unset_means_no_list() -> None:
    assert load_settings(discord_token="t", image_api_key="k").result_hosts == ()


def test_a_malformed_entry_is_one_clear_settings_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESULT_URL_HOSTS", "cdn.example.com, https://x/")

    with pytest.raises(ConfigError) as error:
        load_settings(discord_token="t", image_api_key="k")

    assert "RESULT_URL_HOSTS" in str(error.value) and "host[:port]" in str(error.value)
