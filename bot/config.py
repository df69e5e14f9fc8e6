"""Settings, read once at start from the environment and an optional `.env` file."""

from __future__ import annotations

import importlib.util
import socket
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core.relay.urls import HostPort, parse_hosts

DISCORD_API_BASE = "https://discord.com/api/v10"


class ConfigError(Exception):
    """A required setting is missing or malformed; the message is safe to print."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Secrets and endpoints (public names: deployments script against them).
    discord_token: SecretStr
    image_api_key: SecretStr
    image_api_base_url: str = "https://api.tokaify.com/v1"
    image_model: str = "doubao-seedream-4-0-250828"
    user_id_secret: SecretStr | None = None  # keys the opaque `user` sent to the relay
    database_url: str = "sqlite:///data/seedream.db"
    discord_api_base_url: str = DISCORD_API_BASE
    discord_gateway_url: str | None = None

    # Generation defaults.
    default_size: str = "2K"
    default_watermark: bool = False
    max_prompt_length: int = Field(default=4000, ge=1, le=6000)
    image_stream: bool = True
    image_response_format: Literal["url", "b64_json"] = "url"

    # Relay behaviour.
    relay_timeout_seconds: float = Field(default=600.0, gt=0)
    relay_max_retries: int = Field(default=3, ge=0, le=10)
    relay_retry_budget_seconds: float = Field(default=120.0, ge=0)
    relay_concurrency: int = Field(default=4, ge=1, le=1000)
    # The largest result image; also bounds an SSE frame (one image's b64_json) and a JSON body.
    max_download_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    # Comma-separated host[:port]: result URLs only from these hosts (and the relay's origin).
    result_url_hosts: str = ""

    # Fairness and quotas.
    max_jobs_per_user: int = Field(default=2, ge=1, le=100)
    quota_default_limit: int | None = Field(default=25, ge=0)
    quota_period: Literal["daily", "weekly", "monthly"] = "daily"
    quota_reservation_ttl_seconds: float = Field(default=3600.0, gt=0)
    # A request for at least this many images first asks the member to confirm (0: never asks).
    confirm_at_images: int = Field(default=8, ge=0, le=15)
    confirm_timeout_seconds: float = Field(default=300.0, gt=0, le=840)

    # Discord delivery.
    interaction_token_margin_seconds: float = Field(default=60.0, ge=0, le=600)
    # auto: sync only when the command payload changed since the last sync (hash in the database).
    sync_commands: Literal["auto", "true", "false"] = "auto"

    # Reference images (/imagine reference, /blend, "Edit with Seedream", replies).
    # The privileged Message Content intent lets any reply to a bot result count as an edit;
    # it must also be switched on in the Developer Portal, or Discord refuses the connection.
    message_content_intent: bool = False
    # How references reach the relay: inline data URIs (works with any relay) or Discord CDN URLs.
    reference_transport: Literal["data_uri", "url"] = "data_uri"

    # Jobs and processes.
    # The name this process's job leases carry; a restart under the same name takes over its own
    # earlier jobs at once. Default: the host name (give each process sharing a database its own).
    instance_name: str | None = Field(default=None, min_length=1, max_length=120)
    job_lease_seconds: float = Field(default=30.0, ge=3, le=3600)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=3600)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # text: one readable line per record; json: one JSON object per line, for log shippers.
    log_format: Literal["text", "json"] = "text"
    # Serves /metrics (Prometheus) and /healthz on this port; unset: off. 0 picks a free port.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)

    @field_validator("image_api_base_url", "discord_api_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("result_url_hosts")
    @classmethod
    def _host_list(cls, value: str) -> str:
        parse_hosts(value)
        return value

    @property
    def result_hosts(self) -> tuple[HostPort, ...]:
        """`RESULT_URL_HOSTS`, parsed."""
        return parse_hosts(self.result_url_hosts)

    @field_validator("discord_token", "image_api_key")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("sync_commands", mode="before")
    @classmethod
    def _sync_words(cls, value: object) -> object:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return {"1": "true", "yes": "true", "on": "true", "0": "false", "no": "false",
                    "off": "false"}.get(value.strip().lower(), value.strip().lower())
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_word(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _unset_port(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("quota_default_limit", mode="before")
    @classmethod
    def _unlimited_words(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "none", "unlimited"):
            return None
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        if value.startswith("postgres") and importlib.util.find_spec("asyncpg") is None:
            raise ValueError("needs the PostgreSQL driver: install the bot with its `postgres` extra")
        return value


def instance_name(settings: Settings) -> str:
    """This process's stable name for job leases (see `INSTANCE_NAME`)."""
    return settings.instance_name or socket.gethostname()[:120] or "local"


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation errors into one clear line per setting.

    The message names the setting and the problem but never echoes the value, so a
    malformed secret cannot leak into a terminal or a log.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = str(item["loc"][0]).upper() if item["loc"] else "settings"
            reason = "is required" if item["type"] == "missing" else f"is invalid: {item['msg']}"
            problems.append(f"{name} {reason}")
        raise ConfigError("; ".join(problems)) from None
