"""Settings, read once at start from the environment and an optional `.env` file."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import socket
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
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
    # Gateway shards: the total (default: Discord's recommended count, all in this process) and
    # the slice this process connects ("0,1", "0-3", "0,2-3"; default: all of them).
    shard_count: int | None = Field(default=None, ge=1, le=100_000)
    shard_ids: str | None = None
    job_lease_seconds: float = Field(default=30.0, ge=3, le=3600)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=3600)
    # Relay calls a job may make in all: one interrupted mid-generation is generated again once.
    job_max_attempts: int = Field(default=2, ge=1, le=10)

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

    @field_validator("shard_ids")
    @classmethod
    def _shard_slice(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        if "shard_count" not in info.data:  # SHARD_COUNT itself is invalid and reported as such
            return value
        count = info.data["shard_count"]
        if count is None:
            raise ValueError("needs SHARD_COUNT (the total number of shards) to be set as well")
        return format_shard_ids(parse_shard_ids(value, count))

    @property
    def shard_slice(self) -> tuple[int, ...] | None:
        """`SHARD_IDS`, parsed (None: every shard)."""
        if self.shard_ids is None or self.shard_count is None:
            return None
        return parse_shard_ids(self.shard_ids, self.shard_count)

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


_SHARD_PART = re.compile(r"(?P<first>\d{1,6})(?:\s*-\s*(?P<last>\d{1,6}))?")


def parse_shard_ids(text: str, shard_count: int) -> tuple[int, ...]:
    """`SHARD_IDS` ("0,1", "0-3", "0,2-3") as sorted shard ids, each below `shard_count`.

    Raises ValueError with a message fit for an operator (it names the offending part).
    """
    ids: set[int] = set()
    for part in (piece.strip() for piece in text.split(",")):
        match = _SHARD_PART.fullmatch(part)
        if match is None:
            raise ValueError(f"{part!r} is not a shard id or a range like 0-3")
        first = int(match["first"])
        last = int(match["last"]) if match["last"] is not None else first
        if last < first:
            raise ValueError(f"range {part!r} runs backwards")
        if last >= shard_count:
            raise ValueError(f"shard {last} is out of range: SHARD_COUNT={shard_count} allows 0-{shard_count - 1}")
        span = set(range(first, last + 1))
        if span & ids:
            raise ValueError(f"shard {min(span & ids)} is listed twice")
        ids |= span
    return tuple(sorted(ids))


def format_shard_ids(ids: tuple[int, ...]) -> str:
    """The canonical form of a slice: ascending, runs as ranges (`0-3,5`)."""
    runs: list[list[int]] = []
    for shard in ids:
        if runs and shard == runs[-1][1] + 1:
            runs[-1][1] = shard
        else:
            runs.append([shard, shard])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def instance_name(settings: Settings) -> str:
    """This process's stable name for job leases (see `INSTANCE_NAME`).

    Default: the host name, plus `-shards-<ids>` when `SHARD_IDS` is set, so two shard
    processes on one host lease under different names and each restart keeps its own.
    """
    if settings.instance_name:
        return settings.instance_name
    host = socket.gethostname() or "local"
    if settings.shard_ids is None:
        return host[:120]
    ids = settings.shard_ids
    if len(ids) > 60:  # a long scattered slice: a stable digest keeps the name within 120
        ids = hashlib.sha256(ids.encode()).hexdigest()[:16]
    suffix = f"-shards-{ids}"
    return host[: 120 - len(suffix)] + suffix


SettingsT = TypeVar("SettingsT", bound=Settings)


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation errors into one clear line per setting.

    The message names the setting and the problem but never echoes the value, so a
    malformed secret cannot leak into a terminal or a log.
    """
    return read_settings(Settings, **overrides)


def read_settings(settings_class: type[SettingsT], **overrides: object) -> SettingsT:
    """`load_settings` for a subclass (operator tools need fewer settings: bot/ops/settings.py)."""
    try:
        return settings_class(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = str(item["loc"][0]).upper() if item["loc"] else "settings"
            reason = "is required" if item["type"] == "missing" else f"is invalid: {item['msg']}"
            problems.append(f"{name} {reason}")
        raise ConfigError("; ".join(problems)) from None
