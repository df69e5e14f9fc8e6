"""Logging that can never print a secret, as text or JSON lines (LOG_FORMAT), without library noise."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    """Replaces any secret value that slips into a log record with a placeholder."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if len(secret) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        text = record.exc_text or ""
        stack = record.stack_info or ""
        for secret in self._secrets:
            message = message.replace(secret, "[redacted]")
            text = text.replace(secret, "[redacted]")
            stack = stack.replace(secret, "[redacted]")
        record.msg, record.args = message, None
        record.exc_text = text or None
        record.stack_info = stack or None
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, exc (null without a traceback).

    Five fixed fields need only `json.dumps`; python-json-logger would be a dependency for
    features (field renaming, extras) the bot does not use. Runs after `RedactSecrets`, so the
    message and traceback it writes are already redacted.
    """

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        exc = record.exc_text
        if record.stack_info:
            exc = f"{exc}\n{record.stack_info}" if exc else record.stack_info
        return json.dumps({
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "exc": exc,
        }, ensure_ascii=False)


class DiscordClientNoise(logging.Filter):
    """On `discord.client`: drops the voice-library warnings (this bot has no voice) and, below
    DEBUG, "logging in using static token" (repeated at every retry, it tells an operator nothing);
    turns the traceback of each gateway reconnect into one line (an outage is not a bug; the line
    says why). A filter, not a level: discord.client's other warnings still matter."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "voice will NOT be supported" in str(record.msg):
            return False
        if record.msg == "logging in using static token":
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        if str(record.msg).startswith("Attempting a reconnect") and record.exc_info:
            error = record.exc_info[1]
            reason = f"{type(error).__name__}: {error}" if error is not None else "unknown error"
            record.msg = f"Discord connection lost ({reason}); {record.getMessage().lower()}"
            record.args, record.exc_info, record.exc_text = None, None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure_logging(level: str, secrets: Iterable[str], log_format: Literal["text", "json"] = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_libraries(level)


def quiet_libraries(level: str) -> None:
    """INFO is for what an operator acts on: not alembic's plugin and context lines at every start,
    not discord.py's voice warnings. LOG_LEVEL=DEBUG shows alembic again."""
    numeric = logging.getLevelName(level)
    logging.getLogger("discord").setLevel(max(logging.INFO, numeric))
    logging.getLogger("alembic").setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)
    client = logging.getLogger("discord.client")
    if not any(isinstance(existing, DiscordClientNoise) for existing in client.filters):
        client.addFilter(DiscordClientNoise())
