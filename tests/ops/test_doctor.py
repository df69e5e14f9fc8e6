"""`python -m bot doctor`: one line per check, exit 0 only when nothing failed, a failed check
skipping only its dependants; REST only (no gateway, no command writes), secrets never shown."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.storage.database import Database, migration_config
from tests.conftest import POSTGRES_URL, require_postgres
from tests.fakes.discord_state import (
    ATTACH_FILES,
    EMBED_LINKS,
    INTENT_MESSAGE_CONTENT,
    PRIVILEGED_INTENTS,
    VIEW_CHANNEL,
)
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord
from tests.ops.conftest import Cli, CliResult, closed_port

SCRIPTS = ScriptDirectory.from_config(migration_config())
HEAD = SCRIPTS.get_current_head()


def revisions_after(revision: str) -> str:
    """The revisions after `revision` up to head, oldest first, as doctor lists them."""
    newer = [script.revision for script in SCRIPTS.iterate_revisions(HEAD, revision)]
    return ", ".join(reversed(newer))

ROOT = Path(__file__).resolve().parents[2]
ALL_CHECKS = ["settings", "secrets.discord_token", "secrets.image_api_key", "discord.token", "discord.intents",
              "discord.invite", "discord.permissions", "database", "relay", "relay.generate"]
INVITE_PERMISSIONS = 274878024704  # View Channel, Send Messages (+ in Threads), Embed Links, Attach Files, History


async def migrated(database_url: str, revision: str = "head") -> None:
    database = Database(database_url)
    await database.migrate(revision)
    await database.close()


def assert_no_secret(result: CliResult, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.text


async def test_all_good_exits_zero_without_gateway_sync_or_image(
        cli: Cli, fake_discord: StandardDiscord, relay: FakeRelay, database_url: str) -> None:
    await migrated(database_url)
    result = await cli("doctor")
    assert result.code == 0, result.text
    assert result.line("✓ DISCORD_TOKEN is valid").endswith(f"(id {fake_discord.bot_user.id})")
    invite = result.line("✓ invite URL: ")
    assert f"client_id={fake_discord.app_id}" in invite
    assert "scope=bot+applications.commands" in invite and f"permissions={INVITE_PERMISSIONS}" in invite
    assert "Seedream Test Guild" in result.line("✓ server ")
    assert result.line("✓ the database at ").endswith(f"is reachable and migrated (revision {HEAD})")
    assert result.line("✓ the relay at ").endswith("answers and accepts IMAGE_API_KEY")
    assert result.line("– skipped: not asked for").startswith("– skipped")
    assert result.out.rstrip().endswith("all checks passed")
    assert fake_discord.sessions == []  # never the gateway
    assert not [r for r in fake_discord.requests if r.method != "GET"]  # never a write (no sync)
    assert relay.requests == [] and len(relay.model_requests) == 1  # no image without --generate
    assert_no_secret(result, fake_discord.token, relay.api_key)


async def test_bad_token_fails_and_skips_only_its_dependants(
        cli: Cli, env: dict[str, str], database_url: str) -> None:
    await migrated(database_url)
    env["DISCORD_TOKEN"] = "wrong-token-value-123"
    result = await cli("doctor")
    assert result.code == 1
    assert "Reset Token" in result.line("✗ Discord rejected DISCORD_TOKEN")
    assert result.out.count("– skipped: the token was rejected") == 3  # intents, invite, permissions
    assert result.line("✓ the database at ")
    assert result.line("✓ the relay at ")
    assert_no_secret(result, "wrong-token-value-123")


async def test_unreachable_discord_names_the_address_and_setting(cli: Cli, env: dict[str, str]) -> None:
    env["DISCORD_API_BASE_URL"] = f"http://127.0.0.1:{closed_port()}/api/v10"
    result = await cli("doctor")
    assert result.code == 1
    line = result.line("✗ cannot reach Discord at ")
    assert env["DISCORD_API_BASE_URL"] in line and "(DISCORD_API_BASE_URL)" in line
    assert "Traceback" not in result.text


async def test_missing_secrets_are_named_and_the_rest_still_runs(cli: Cli, env: dict[str, str],
                                                                 database_url: str) -> None:
    await migrated(database_url)
    del env["DISCORD_TOKEN"]
    result = await cli("doctor")
    assert result.code == 1
    assert result.line("✗ DISCORD_TOKEN is not set")
    assert result.line("✓ IMAGE_API_KEY is set")
    assert result.out.count("– skipped: DISCORD_TOKEN is not set") == 4
    assert result.line("✓ the relay at ")
    env["DISCORD_TOKEN"], env["IMAGE_API_KEY"] = "fake-bot-token", " "
    result = await cli("doctor")
    assert result.code == 1
    assert result.line("✗ IMAGE_API_KEY is not set")
    assert result.out.count("– skipped: IMAGE_API_KEY is not set") == 2  # the relay, and generating
    assert result.line("✓ DISCORD_TOKEN is valid")


async def test_intent_asked_for_but_off_in_the_portal_fails(
        cli: Cli, env: dict[str, str], fake_discord: StandardDiscord, database_url: str) -> None:
    await migrated(database_url)
    fake_discord.portal_intents = PRIVILEGED_INTENTS & ~INTENT_MESSAGE_CONTENT
    env["MESSAGE_CONTENT_INTENT"] = "true"
    result = await cli("doctor")
    assert result.code == 1
    line = result.line("✗ MESSAGE_CONTENT_INTENT=true, but the application's Message Content intent is off")
    assert "Privileged Gateway Intents" in line
    assert result.line("✓ invite URL")


async def test_intent_on_in_the_portal_but_unused_is_fine(
        cli: Cli, env: dict[str, str], fake_discord: StandardDiscord, database_url: str) -> None:
    await migrated(database_url)
    fake_discord.portal_intents = INTENT_MESSAGE_CONTENT
    env["MESSAGE_CONTENT_INTENT"] = "true"
    assert (await cli("doctor")).line("✓ privileged intents: Message Content is enabled")
    env["MESSAGE_CONTENT_INTENT"] = "false"
    result = await cli("doctor")
    assert result.code == 0 and result.line("✓ privileged intents: none asked for")


async def test_missing_permissions_are_listed_by_server_and_channel(
        cli: Cli, fake_discord: StandardDiscord, database_url: str) -> None:
    await migrated(database_url)
    guild = fake_discord.guild
    art = fake_discord.add_channel(guild, "art", overwrites=[
        {"id": str(guild.id), "type": 0, "allow": "0", "deny": str(ATTACH_FILES | EMBED_LINKS)}])
    fake_discord.add_channel(guild, "staff", overwrites=[
        {"id": str(guild.id), "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)}])
    other = fake_discord.add_guild("Other Server", owner=fake_discord.owner)
    fake_discord.add_channel(other, "lobby")
    result = await cli("doctor")
    assert result.code == 1
    assert result.line('✗ server "Seedream Test Guild": permissions missing in 1 of 2 text channel(s)')
    assert "    #art: Embed Links, Attach Files" in result.out.splitlines()
    assert "#general" not in result.out and "#staff" not in result.out  # fine, and hidden from the bot
    assert result.line('✓ server "Other Server": every needed permission in 1 text channel(s)')
    # The fake Discord agrees: it would refuse an image in #art.
    assert not guild.permissions_in(art, fake_discord.bot_user.id) & ATTACH_FILES
    checks = json.loads((await cli("doctor", "--json")).out)
    [failed] = [c for c in checks if c["check"] == "discord.permissions" and c["status"] == "fail"]
    assert failed["data"]["missing"] == [
        {"channel_id": str(art.id), "channel": "#art", "missing": ["Embed Links", "Attach Files"]}]


async def test_a_server_where_the_bot_sees_no_channel_fails(cli: Cli, fake_discord: StandardDiscord,
                                                            database_url: str) -> None:
    await migrated(database_url)
    hidden = fake_discord.add_guild("Hidden", owner=fake_discord.owner, everyone_permissions=0, bot_permissions=0)
    fake_discord.add_channel(hidden, "secret")
    result = await cli("doctor")
    assert result.code == 1
    assert "View Channel" in result.line('✗ server "Hidden": the bot can see no text channel')


async def test_unreachable_relay_names_the_address_and_setting(cli: Cli, env: dict[str, str],
                                                               database_url: str) -> None:
    await migrated(database_url)
    env["IMAGE_API_BASE_URL"] = f"http://127.0.0.1:{closed_port()}/v1"
    result = await cli("doctor", "--generate")
    assert result.code == 1
    line = result.line("✗ cannot reach the relay at ")
    assert env["IMAGE_API_BASE_URL"] in line and "(IMAGE_API_BASE_URL)" in line
    assert result.line("– skipped: the relay check failed")
    assert result.line("✓ DISCORD_TOKEN is valid")


async def test_wrong_relay_key_is_a_401(cli: Cli, env: dict[str, str], relay: FakeRelay, database_url: str) -> None:
    await migrated(database_url)
    env["IMAGE_API_KEY"] = "sk-wrong-key-456789"
    result = await cli("doctor", "--generate")
    assert result.code == 1
    line = result.line("✗ the relay at ")
    assert line.startswith(f"✗ the relay at {relay.base_url} rejected IMAGE_API_KEY (HTTP 401)")
    assert relay.requests == []  # no image tried with a rejected key
    assert_no_secret(result, "sk-wrong-key-456789")


async def test_an_unlisted_model_is_worth_a_look_but_not_a_failure(cli: Cli, relay: FakeRelay,
                                                                   database_url: str) -> None:
    await migrated(database_url)
    relay.listed_models = ["gpt-image-1"]
    result = await cli("doctor")
    assert result.code == 0
    assert "does not list IMAGE_MODEL=doubao-seedream-4-0-250828" in result.line("! the relay at ")


async def test_pending_migrations_are_listed(cli: Cli, database_url: str) -> None:
    await migrated(database_url, "0003")
    result = await cli("doctor")
    assert result.code == 1
    line = result.line("✗ the database at ")
    assert f"has pending migrations: {revisions_after('0003')}" in line and "applies migrations when it starts" in line


async def test_a_database_not_created_yet_is_not_created_by_doctor(cli: Cli, database_url: str,
                                                                   tmp_path: Path) -> None:
    result = await cli("doctor")
    assert result.code == 0, result.text
    assert "the bot creates and migrates it when it starts" in result.line("! no database at ")
    assert not (tmp_path / "data").exists()


async def test_unreachable_postgresql_names_the_setting(cli: Cli, env: dict[str, str]) -> None:
    env["DATABASE_URL"] = f"postgresql://bot:pg-password-789@127.0.0.1:{closed_port()}/seedream"
    result = await cli("doctor")
    assert result.code == 1
    assert "(DATABASE_URL)" in result.line("✗ cannot reach the database at 127.0.0.1:")
    assert_no_secret(result, "pg-password-789")


async def test_settings_that_do_not_parse_fail_first(cli: Cli, env: dict[str, str]) -> None:
    env["RELAY_CONCURRENCY"] = "many"
    result = await cli("doctor")
    assert result.code == 1
    assert "RELAY_CONCURRENCY" in result.line("✗ settings do not parse")
    assert result.out.count("– skipped: the settings do not parse") == 9
    checks = json.loads((await cli("doctor", "--json")).out)
    assert [c["check"] for c in checks] == ALL_CHECKS


async def test_json_is_a_list_of_checks(cli: Cli, fake_discord: StandardDiscord, relay: FakeRelay,
                                        database_url: str) -> None:
    await migrated(database_url)
    result = await cli("doctor", "--json")
    assert result.code == 0
    checks = json.loads(result.out)
    assert [c["check"] for c in checks] == ALL_CHECKS
    for check in checks:
        assert set(check) <= {"check", "status", "message", "fix", "details", "data"}
        assert check["status"] in ("ok", "fail", "skip", "warn")
    by_name = {c["check"]: c for c in checks}
    assert by_name["discord.invite"]["data"]["permissions"] == INVITE_PERMISSIONS
    assert by_name["discord.permissions"]["data"]["guild_id"] == str(fake_discord.guild.id)
    assert by_name["relay.generate"]["status"] == "skip"
    assert fake_discord.token not in result.out and relay.api_key not in result.out


async def test_generate_makes_one_1k_image_and_reports_its_latency(cli: Cli, relay: FakeRelay,
                                                                   database_url: str) -> None:
    await migrated(database_url)
    result = await cli("doctor", "--generate")
    assert result.code == 0, result.text
    assert " s (" in result.line("✓ one 1K image in ")
    assert len(relay.requests) == 1 and relay.requests[0].body["size"] == "1K"


async def test_generate_failure_is_reported(cli: Cli, relay: FakeRelay, database_url: str) -> None:
    from tests.fakes.fake_relay import ark_error

    await migrated(database_url)
    relay.fail_next(403, ark_error("AccountOverdueError", "Your account has an overdue balance."))
    result = await cli("doctor", "--generate")
    assert result.code == 1
    assert "out of credit" in result.line("✗ generating one 1K image failed")


async def test_console_script_runs_doctor_as_a_process(env: dict[str, str], database_url: str,
                                                       tmp_path: Path) -> None:
    await migrated(database_url)
    process_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot", "doctor", "--json"], cwd=tmp_path, env=process_env,
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {c["status"] for c in json.loads(result.stdout)} <= {"ok", "skip"}
    assert env["DISCORD_TOKEN"] not in result.stdout + result.stderr


@pytest.mark.postgres
async def test_postgresql_pending_then_migrated(cli: Cli, env: dict[str, str]) -> None:
    require_postgres()
    name = f"doctor_{uuid.uuid4().hex[:10]}"
    admin = Database(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.engine.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        await migrated(url, "0004")
        env["DATABASE_URL"] = url
        result = await cli("doctor")
        assert result.code == 1
        line = result.line(f"✗ the database at {make_url(url).host}:")
        assert f"has pending migrations: {revisions_after('0004')}" in line
        await migrated(url)
        result = await cli("doctor")
        assert result.code == 0, result.text
        assert result.line("✓ the database at ").endswith(f"/{name} is reachable and migrated (revision {HEAD})")
    finally:
        async with admin.engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.close()
