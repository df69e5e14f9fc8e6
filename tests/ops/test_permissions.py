"""doctor computes a channel's permissions from REST payloads the way Discord does; the fake
Discord (which enforces them on every post) is the reference it must agree with."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.ops.permissions import NEEDED, base_permissions, channel_permissions, missing, permission_names
from tests.fakes.discord_state import (
    ADMINISTRATOR,
    ATTACH_FILES,
    EMBED_LINKS,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    VIEW_CHANNEL,
    DiscordState,
)

BITS = [VIEW_CHANNEL, SEND_MESSAGES, SEND_MESSAGES_IN_THREADS, EMBED_LINKS, ATTACH_FILES, READ_MESSAGE_HISTORY,
        ADMINISTRATOR]
permission_sets = st.lists(st.sampled_from(BITS), max_size=4).map(lambda bits: sum(set(bits)))
overwrite = st.tuples(st.sampled_from(["everyone", "bot_role", "other_role", "member"]), permission_sets,
                      permission_sets)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(everyone=permission_sets, bot_role=permission_sets, extra_role=permission_sets,
       has_extra=st.booleans(), overwrites=st.lists(overwrite, max_size=4, unique_by=lambda o: o[0]))
def test_channel_permissions_agree_with_the_fake_discord(everyone: int, bot_role: int, extra_role: int,
                                                         has_extra: bool, overwrites: list) -> None:
    state = DiscordState()
    guild = state.add_guild("g", everyone_permissions=everyone, bot_permissions=bot_role)
    other = state.add_role(guild, "other", permissions=extra_role)
    bot_id = state.bot_user.id
    member = guild.members[bot_id]
    if has_extra:
        member.role_ids.append(other.id)
    own_role = member.role_ids[0]
    targets = {"everyone": (guild.id, 0), "bot_role": (own_role, 0), "other_role": (other.id, 0),
               "member": (bot_id, 1)}
    channel = state.add_channel(guild, "c", overwrites=[
        {"id": str(targets[who][0]), "type": targets[who][1], "allow": str(allow), "deny": str(deny)}
        for who, allow, deny in overwrites])
    guild_payload = {"id": str(guild.id), "owner_id": str(guild.owner_id),
                     "roles": [role.payload() for role in guild.roles.values()]}
    base = base_permissions(guild_payload, member.payload(), bot_id)
    computed = channel_permissions(base, channel.payload(), guild.id, member.payload(), bot_id)
    expected = guild.permissions_in(channel, bot_id)
    assert computed.value & NEEDED.value == expected & NEEDED.value


def test_missing_permissions_are_named_as_in_the_portal() -> None:
    from discord import Permissions

    have = Permissions(view_channel=True, send_messages=True, send_messages_in_threads=True)
    assert permission_names(missing(have)) == ["Embed Links", "Attach Files", "Read Message History"]
