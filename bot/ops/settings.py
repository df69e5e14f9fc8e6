"""The bot's settings as operator tools read them: secrets may be missing.

`doctor` reports a missing secret as one failed check and still runs the checks that do not
need it; `try` needs only the relay key. Every other setting is read and validated exactly as
the bot reads it.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import SecretStr, field_validator
from sqlalchemy.engine import make_url

from bot.config import Settings, read_settings
from bot.logging_setup import configure_logging

UNSET = SecretStr("")


class OperatorSettings(Settings):
    """An unset (or blank) secret is the empty string here, which the tools report themselves."""

    discord_token: SecretStr = UNSET
    image_api_key: SecretStr = UNSET

    @field_validator("discord_token", "image_api_key")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:  # replaces Settings' check of the same name
        return value


def load_operator_settings() -> OperatorSettings:
    """Raises `ConfigError` (one line naming each bad setting, never a value)."""
    return read_settings(OperatorSettings)


def is_set(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value().strip())


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, for redaction."""
    secrets = (settings.discord_token, settings.image_api_key, settings.user_id_secret)
    values = [secret.get_secret_value() for secret in secrets if secret is not None and is_set(secret)]
    password = make_url(settings.database_url).password
    return [*values, str(password)] if password else values


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def quiet_logging(settings: Settings) -> None:
    """Operator tools print their own lines; libraries only for errors (redacted)."""
    configure_logging("ERROR", secret_values(settings))
