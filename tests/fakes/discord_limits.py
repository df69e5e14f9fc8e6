"""Discord's message and command limits, enforced the way the API reports them.

Sources: developers/resources/message.mdx ("Embed Limits", create message), reference.mdx
("Uploading Files"), interactions/application-commands.mdx, topics/opcodes-and-status-codes.mdx.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tests.fakes.discord_state import FLAG_COMPONENTS_V2, JSON, iter_components

MAX_FILES = 10
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
EMBED_FIELD_LIMITS = {"title": 256, "description": 4096}
MAX_CUSTOM_ID = 100

_COMMAND_NAME_RE = re.compile(r"^[-_'\w]{1,32}$")
# Discord's locales (reference.mdx, Locales); a localization under any other key is refused.
DISCORD_LOCALES = frozenset({
    "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl", "no", "pl", "pt-BR",
    "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th", "zh-CN", "ja", "zh-TW", "ko",
})


class DiscordError(Exception):
    """An API error response: HTTP status, JSON error code and message, optional field errors."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> JSON:
        data: JSON = {"message": self.message, "code": self.code}
        if self.errors is not None:
            data["errors"] = self.errors
        return data


def invalid_form(field: str, code: str, message: str) -> DiscordError:
    """The 50035 "Invalid Form Body" shape with one field error."""
    errors: JSON = {}
    node = errors
    parts = field.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = {"_errors": [{"code": code, "message": message}]}
    return DiscordError(400, 50035, "Invalid Form Body", errors)


def too_long(field: str, limit: int) -> DiscordError:
    return invalid_form(field, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def check_files(sizes: Sequence[tuple[str, int]], kept: int, size_limit: int) -> None:
    """At most 10 attachments on a message; each new file within the per-file limit."""
    if len(sizes) + kept > MAX_FILES:
        raise too_long("attachments", MAX_FILES)
    for _filename, size in sizes:
        if size > size_limit:
            raise DiscordError(413, 40005, "Request entity too large")


def check_message(payload: JSON, *, creating: bool, has_files: bool) -> None:
    """Content, embed and component limits of a create or edit body."""
    content = payload.get("content")
    if content is not None and len(str(content)) > MAX_CONTENT:
        raise too_long("content", MAX_CONTENT)
    embeds = payload.get("embeds") or []
    _check_embeds(embeds)
    components = payload.get("components") or []
    _check_components(components, v2=bool(int(payload.get("flags") or 0) & FLAG_COMPONENTS_V2))
    for index, attachment in enumerate(payload.get("attachments") or []):
        if len(str(attachment.get("description") or "")) > 1024:
            raise too_long(f"attachments.{index}.description", 1024)
    if creating and not (content or embeds or components or has_files or payload.get("sticker_ids")
                         or payload.get("poll")):
        raise DiscordError(400, 50006, "Cannot send an empty message")


def _check_embeds(embeds: Sequence[JSON]) -> None:
    if len(embeds) > MAX_EMBEDS:
        raise too_long("embeds", MAX_EMBEDS)
    total = 0
    for i, embed in enumerate(embeds):
        for key, limit in EMBED_FIELD_LIMITS.items():
            text = str(embed.get(key) or "")
            if len(text) > limit:
                raise too_long(f"embeds.{i}.{key}", limit)
            total += len(text)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise too_long(f"embeds.{i}.fields", 25)
        for j, item in enumerate(fields):
            name, value = str(item.get("name") or ""), str(item.get("value") or "")
            if not name or not value:
                raise invalid_form(f"embeds.{i}.fields.{j}", "BASE_TYPE_REQUIRED", "This field is required")
            if len(name) > 256:
                raise too_long(f"embeds.{i}.fields.{j}.name", 256)
            if len(value) > 1024:
                raise too_long(f"embeds.{i}.fields.{j}.value", 1024)
            total += len(name) + len(value)
        footer = str((embed.get("footer") or {}).get("text") or "")
        if len(footer) > 2048:
            raise too_long(f"embeds.{i}.footer.text", 2048)
        author = str((embed.get("author") or {}).get("name") or "")
        if len(author) > 256:
            raise too_long(f"embeds.{i}.author.name", 256)
        total += len(footer) + len(author)
    if total > MAX_EMBED_TOTAL:
        raise invalid_form("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def _check_components(components: Sequence[JSON], *, v2: bool) -> None:
    if not v2:
        if len(components) > 5:
            raise too_long("components", 5)
        for i, row in enumerate(components):
            if row.get("type") != 1:
                raise invalid_form(f"components.{i}.type", "UNION_TYPE_CHOICES",
                                   "Value of field \"type\" must be one of (1,).")
            children = row.get("components") or []
            if not 1 <= len(children) <= 5:
                raise too_long(f"components.{i}.components", 5)
    seen: set[str] = set()
    for component in iter_components(components):
        if component.get("type") == 2 and component.get("style") == 5:
            if not component.get("url"):
                raise invalid_form("components", "BASE_TYPE_REQUIRED", "A link button needs a url")
            continue
        custom_id = component.get("custom_id")
        if custom_id is None:
            if component.get("type") in (2, 3, 4, 5, 6, 7, 8):
                raise invalid_form("components", "BASE_TYPE_REQUIRED", "custom_id is required")
            continue
        if not 1 <= len(str(custom_id)) <= MAX_CUSTOM_ID:
            raise too_long("components.custom_id", MAX_CUSTOM_ID)
        if custom_id in seen:
            raise invalid_form("components", "COMPONENT_CUSTOM_ID_DUPLICATED",
                               "Component custom id cannot be duplicated")
        seen.add(str(custom_id))
        if len(str(component.get("label") or "")) > 80:
            raise too_long("components.label", 80)


def check_commands(commands: Sequence[Any]) -> None:
    """Bulk-overwrite body of application commands (application-commands.mdx limits)."""
    counts = {1: 0, 2: 0, 3: 0}
    for i, command in enumerate(commands):
        kind = int(command.get("type", 1))
        counts[kind] = counts.get(kind, 0) + 1
        name = str(command.get("name", ""))
        if kind == 1:
            if not _COMMAND_NAME_RE.match(name) or name != name.lower():
                raise invalid_form(f"{i}.name", "APPLICATION_COMMAND_INVALID_NAME", "Invalid command name")
            if not 1 <= len(str(command.get("description", ""))) <= 100:
                raise too_long(f"{i}.description", 100)
            _check_localizations(command, f"{i}")
            _check_options(command.get("options") or [], f"{i}.options")
        else:
            if not 1 <= len(name) <= 32:
                raise too_long(f"{i}.name", 32)
            if command.get("options"):
                raise invalid_form(f"{i}.options", "CONTEXT_MENU_OPTIONS", "Context menus take no options")
    if counts[1] > 100:
        raise DiscordError(400, 30032, "Maximum number of application commands reached (100)")
    if counts[2] > 15 or counts[3] > 15:
        raise DiscordError(400, 30032, "Maximum number of context menu commands reached (15)")


def _check_localizations(entity: JSON, where: str) -> None:
    """`name_localizations` / `description_localizations`: known locales, and the field's own length."""
    for field, limit in (("name_localizations", 32 if "description" in entity else 100),
                         ("description_localizations", 100)):
        for locale, text in (entity.get(field) or {}).items():
            if locale not in DISCORD_LOCALES:
                raise invalid_form(f"{where}.{field}.{locale}", "LOCALE_INVALID", "Invalid locale")
            if not 1 <= len(str(text)) <= limit:
                raise too_long(f"{where}.{field}.{locale}", limit)


def _check_options(options: Sequence[JSON], where: str) -> None:
    if len(options) > 25:
        raise too_long(where, 25)
    names: set[str] = set()
    seen_optional = False
    for j, option in enumerate(options):
        name = str(option.get("name", ""))
        if not _COMMAND_NAME_RE.match(name) or name in names:
            raise invalid_form(f"{where}.{j}.name", "APPLICATION_COMMAND_INVALID_NAME", "Invalid option name")
        names.add(name)
        if not 1 <= len(str(option.get("description", ""))) <= 100:
            raise too_long(f"{where}.{j}.description", 100)
        _check_localizations(option, f"{where}.{j}")
        if len(option.get("choices") or []) > 25:
            raise too_long(f"{where}.{j}.choices", 25)
        for k, choice in enumerate(option.get("choices") or []):
            _check_localizations(choice, f"{where}.{j}.choices.{k}")
        if option.get("type") in (1, 2):
            _check_options(option.get("options") or [], f"{where}.{j}.options")
            continue
        if option.get("required"):
            if seen_optional:
                raise invalid_form(f"{where}.{j}.required", "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                                   "Required options must be placed before non-required options")
        else:
            seen_optional = True
