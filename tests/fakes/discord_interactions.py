"""INTERACTION_CREATE and MESSAGE_CREATE payloads shaped as Discord sends them.

Option types come from the commands the bot synced, so a test passes plain values and the
payload carries the right types, resolved objects and validation a Discord client would apply
(required options, choices, min/max).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tests.fakes.discord_state import (
    JSON,
    Channel,
    DiscordState,
    Guild,
    Member,
    Role,
    StoredAttachment,
    StoredMessage,
    User,
    iter_components,
)

# A file a user attaches: (filename, bytes) or (filename, bytes, content_type).
Upload = tuple[str, bytes] | tuple[str, bytes, str]

OPTION_TYPES = {"subcommand": 1, "group": 2, "string": 3, "integer": 4, "boolean": 5, "user": 6,
                "channel": 7, "role": 8, "mentionable": 9, "number": 10, "attachment": 11}


@dataclass(frozen=True)
class Envelope:
    """An interaction payload plus what the fake needs to track it."""

    payload: JSON
    name: str
    command_type: int | None
    user: User
    guild_id: int | None
    channel_id: int
    attachment_size_limit: int
    source_message_id: int | None = None


def build_envelope(state: DiscordState, *, type: int, name: str, data: JSON, user: User, channel: Channel,
                   attachment_size_limit: int, age: timedelta = timedelta(0), locale: str = "en-US",
                   message: StoredMessage | None = None, command_type: int | None = None) -> Envelope:
    interaction_id = state.snowflakes.next(state.clock.now() - age)
    guild = state.guild_of(channel)
    payload: JSON = {
        "id": str(interaction_id), "application_id": str(state.app_id), "type": type,
        "token": f"fake-interaction-{secrets.token_urlsafe(24)}", "version": 1, "data": data,
        "channel_id": str(channel.id), "locale": locale, "entitlements": [],
        "attachment_size_limit": attachment_size_limit,
    }
    if guild is not None:
        member = guild.members.get(user.id) or Member(user)
        payload.update({
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": guild.locale, "features": []},
            "guild_locale": guild.locale,
            "member": member.payload(permissions=guild.permissions_in(channel, user.id)),
            "app_permissions": str(guild.permissions_in(channel, state.bot_user.id)),
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "channel": {**channel.payload(), "permissions": str(guild.permissions_in(channel, user.id))},
        })
    else:
        payload.update({
            "user": user.payload(), "app_permissions": str((1 << 51) - 1),
            "authorizing_integration_owners": {"0": "0"}, "context": 1, "channel": channel.payload(),
        })
    if message is not None:
        payload["message"] = message.payload()
    return Envelope(payload, name, command_type, user, guild.id if guild else None, channel.id,
                    attachment_size_limit, message.id if message else None)


# -- chat input ---------------------------------------------------------------------------------

def slash_data(state: DiscordState, name: str, values: Mapping[str, Any], *, guild: Guild | None,
               subcommand: str | None, uploads: Sequence[Upload], focused: str | None = None) -> JSON:
    """`data` of a chat-input (or autocomplete) interaction for the synced command `name`."""
    command = state.command(name, guild=guild)
    resolved: JSON = {}
    path = subcommand.split() if subcommand else []
    schema: list[JSON] | None = list(command.get("options") or []) if command else None
    wrappers: list[JSON] = []
    for part in path:
        if schema is not None:
            match = next((o for o in schema if o["name"] == part and o["type"] in (1, 2)), None)
            if match is None:
                raise ValueError(f"/{name} has no subcommand or group {part!r}")
            schema = list(match.get("options") or [])
            kind = int(match["type"])
        else:
            kind = 1 if part == path[-1] else 2
        wrappers.append({"name": part, "type": kind})
    if schema is not None and any(o["type"] in (1, 2) for o in schema):
        raise ValueError(f"/{name} needs a subcommand: pass subcommand=")
    options = _options(state, guild, name, schema, values, list(uploads), resolved, focused)
    for wrapper in reversed(wrappers):
        wrapper["options"] = options
        options = [wrapper]
    data: JSON = {"id": str(command["id"]) if command else str(state.snowflakes.next()), "name": name,
                  "type": 1, "options": options}
    if command and command.get("guild_id"):
        data["guild_id"] = str(command["guild_id"])
    if resolved:
        data["resolved"] = resolved
    return data


def _options(state: DiscordState, guild: Guild | None, command: str, schema: list[JSON] | None,
             values: Mapping[str, Any], uploads: list[Upload], resolved: JSON, focused: str | None) -> list[JSON]:
    values = dict(values)
    if schema is None:  # command not synced: infer types from the Python values
        schema = [{"name": k, "type": _infer_type(v)} for k, v in values.items()]
        schema += [{"name": f"attachment{i or ''}", "type": 11} for i in range(len(uploads))]
    known = {o["name"] for o in schema}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"/{command} has no option(s) {sorted(unknown)}; it has {sorted(known)}")
    out: list[JSON] = []
    for option in schema:
        option_name, kind = option["name"], int(option["type"])
        if option_name not in values and kind == 11 and uploads:
            values[option_name] = uploads.pop(0)
        if option_name not in values:
            if option.get("required") and focused is None:
                raise ValueError(f"/{command} requires option {option_name!r}")
            continue
        value = values[option_name]
        if option_name == focused:
            out.append({"name": option_name, "type": kind, "value": str(value), "focused": True})
            continue
        out.append({"name": option_name, "type": kind,
                    "value": _option_value(state, guild, option, value, resolved)})
    if uploads:
        raise ValueError(f"/{command} has no attachment option left for {len(uploads)} file(s)")
    return out


def _infer_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    if isinstance(value, User | Member):
        return 6
    if isinstance(value, Channel):
        return 7
    if isinstance(value, Role):
        return 8
    if isinstance(value, tuple):
        return 11
    return 3


def _option_value(state: DiscordState, guild: Guild | None, option: JSON, value: Any, resolved: JSON) -> Any:
    kind, name = int(option["type"]), option["name"]
    if kind == 3:
        if not isinstance(value, str):
            raise TypeError(f"option {name!r} is a string, got {value!r}")
        if not option.get("min_length", 0) <= len(value) <= option.get("max_length", 6000):
            raise ValueError(f"option {name!r}: length {len(value)} outside the command's bounds")
    elif kind in (4, 10):
        if isinstance(value, bool) or not isinstance(value, int | float) or (kind == 4 and isinstance(value, float)):
            raise TypeError(f"option {name!r} is {'an integer' if kind == 4 else 'a number'}, got {value!r}")
        low, high = option.get("min_value"), option.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"option {name!r}: {value} outside [{low}, {high}]")
    elif kind == 5:
        if not isinstance(value, bool):
            raise TypeError(f"option {name!r} is a boolean, got {value!r}")
    elif kind in (6, 9) and isinstance(value, User | Member):
        user = value.user if isinstance(value, Member) else value
        resolved.setdefault("users", {})[str(user.id)] = user.payload()
        member = guild.members.get(user.id) if guild else None
        if guild is not None and member is not None:
            resolved.setdefault("members", {})[str(user.id)] = member.payload(
                with_user=False, permissions=guild.base_permissions(user.id))
        return str(user.id)
    elif kind == 7 and isinstance(value, Channel):
        perms = guild.permissions_in(value, state.bot_user.id) if guild else 0
        resolved.setdefault("channels", {})[str(value.id)] = {
            "id": str(value.id), "name": value.name, "type": value.type, "permissions": str(perms),
            "parent_id": None, "guild_id": str(value.guild_id) if value.guild_id else None}
        return str(value.id)
    elif kind in (8, 9) and isinstance(value, Role):
        resolved.setdefault("roles", {})[str(value.id)] = value.payload()
        return str(value.id)
    elif kind == 11:
        attachment = value if isinstance(value, StoredAttachment) else store_upload(state, value, ephemeral=True)
        resolved.setdefault("attachments", {})[str(attachment.id)] = attachment.payload()
        return str(attachment.id)
    else:
        raise TypeError(f"option {name!r} (type {kind}) cannot take {value!r}")
    choices = option.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise ValueError(f"option {name!r} must be one of {[c['value'] for c in choices]}, got {value!r}")
    return value


def store_upload(state: DiscordState, upload: Upload, *, ephemeral: bool = False) -> StoredAttachment:
    """Keep a user's file on the fake CDN (slash-option uploads are marked ephemeral, as on Discord)."""
    content_type = upload[2] if len(upload) == 3 else None
    return state.store_attachment(upload[0], upload[1], content_type, ephemeral=ephemeral)


# -- context menus, components, modals ------------------------------------------------------------

def context_menu_data(state: DiscordState, name: str, *, guild: Guild | None,
                      target_message: StoredMessage | None, target_user: User | None) -> JSON:
    kind = 3 if target_message is not None else 2
    command = state.command(name, type=kind, guild=guild)
    data: JSON = {"id": str(command["id"]) if command else str(state.snowflakes.next()), "name": name,
                  "type": kind}
    if target_message is not None:
        referenced = state.all_messages.get(target_message.reply_to_id or 0)
        data["target_id"] = str(target_message.id)
        # The target's content is exempt from the Message Content intent.
        data["resolved"] = {"messages": {str(target_message.id): target_message.payload(referenced=referenced)}}
    elif target_user is not None:
        data["target_id"] = str(target_user.id)
        data["resolved"] = {"users": {str(target_user.id): target_user.payload()}}
        member = guild.members.get(target_user.id) if guild else None
        if guild is not None and member is not None:
            data["resolved"]["members"] = {
                str(target_user.id): member.payload(with_user=False,
                                                    permissions=guild.base_permissions(target_user.id))}
    else:
        raise ValueError("a context menu needs target_message or target_user")
    return data


def component_data(message: StoredMessage, custom_id: str, values: Sequence[str] | None) -> JSON:
    """What clicking a button / choosing in a select sends; only components on the message can be used."""
    component = next((c for c in iter_components(message.components) if c.get("custom_id") == custom_id), None)
    if component is None:
        raise LookupError(f"message {message.id} has no component {custom_id!r}; it has {message.custom_ids}")
    if component.get("disabled"):
        raise ValueError(f"component {custom_id!r} is disabled; a user cannot use it")
    data: JSON = {"custom_id": custom_id, "component_type": int(component["type"])}
    if component["type"] != 2:
        data["values"] = list(values or [])
    elif values:
        raise ValueError("a button takes no values")
    return data


def modal_submit_data(modal: JSON, values: Mapping[str, str]) -> JSON:
    """Mirror the modal the bot opened, filling each text input; Discord's client enforces its rules."""
    remaining = dict(values)

    def fill(component: JSON) -> JSON:
        kind = int(component["type"])
        if kind == 1:
            return {"type": 1, "components": [fill(c) for c in component.get("components", [])]}
        if kind == 18:
            return {"type": 18, "id": component.get("id", 0), "component": fill(component["component"])}
        custom_id = str(component.get("custom_id", ""))
        if kind == 4:
            value = remaining.pop(custom_id, component.get("value") or "")
            if component.get("required", True) and not value:
                raise ValueError(f"modal input {custom_id!r} is required")
            low, high = component.get("min_length", 0), component.get("max_length", 4000)
            if value and not low <= len(value) <= high:
                raise ValueError(f"modal input {custom_id!r}: length {len(value)} outside [{low}, {high}]")
            return {"type": 4, "id": component.get("id", 0), "custom_id": custom_id, "value": value}
        return {"type": kind, "id": component.get("id", 0), "custom_id": custom_id, "values": []}

    components = [fill(c) for c in modal.get("components", [])]
    if remaining:
        raise LookupError(f"the modal has no input(s) {sorted(remaining)}")
    return {"custom_id": modal["custom_id"], "components": components}
