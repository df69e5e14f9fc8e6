"""A PostgreSQL DATABASE_URL without its driver installed is one clear settings line."""

from __future__ import annotations

import importlib.util

import pytest

from bot.config import ConfigError, load_settings


def test_postgresql_url_without_asyncpg_names_the_extra_to_install(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "asyncpg" else real_find_spec(name, *args))
    with pytest.raises(ConfigError) as error:
        load_settings(discord_token="t", image_api_key="k", database_url="postgresql://u@127.0.0.1/db")
    assert "DATABASE_URL" in str(error.value) and "postgres` extra" in str(error.value)


def test_sqlite_url_needs_no_postgresql_driver(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    settings = load_settings(discord_token="t", image_api_key="k", database_url="sqlite:///x.db")
    assert settings.database_url == "sqlite:///x.db"
