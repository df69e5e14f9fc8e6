"""`python -m bot doctor`: check everything that can be checked without a member.

One line per check (✓ / ✗ with what to do; – skipped; ! worth a look), exit 0 only when none
failed. A failed check skips only the checks that need it: a bad token still lets the
database and relay checks run. Never connects to the gateway and never syncs commands.
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp

from bot.config import ConfigError
from bot.ops import doctor_discord, doctor_relay
from bot.ops.checks import CheckResult, fail, ok, render_json, render_text, skip
from bot.ops.doctor_database import database_check
from bot.ops.settings import OperatorSettings, is_set, load_operator_settings, quiet_logging, redact, secret_values

SETTINGS_FAILED = "the settings do not parse"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("doctor", help="check settings, Discord, the database and the relay",
                                 description="Check settings, secrets, Discord (REST only), the database and the "
                                 "relay. Exits 0 only when no check failed.")
    parser.add_argument("--generate", action="store_true", help="also make one 1K image and report its latency")
    parser.add_argument("--json", action="store_true", help="print the results as a JSON list")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_operator_settings()
    except ConfigError as error:
        results = [fail("settings", f"settings do not parse: {error}",
                        "fix them in the environment or .env (see README, Settings)"),
                   skip("secrets.discord_token", SETTINGS_FAILED), skip("secrets.image_api_key", SETTINGS_FAILED),
                   *doctor_discord.skipped(SETTINGS_FAILED), skip("database", SETTINGS_FAILED),
                   *doctor_relay.skipped(SETTINGS_FAILED)]
        secrets: list[str] = []
    else:
        quiet_logging(settings)
        results = asyncio.run(diagnose(settings, generate=args.generate))
        secrets = secret_values(settings)
    print(redact(render_json(results) if args.json else render_text(results), secrets))
    return 1 if any(result.failed for result in results) else 0


async def diagnose(settings: OperatorSettings, *, generate: bool) -> list[CheckResult]:
    token = _secret_check("DISCORD_TOKEN", is_set(settings.discord_token),
                          "the bot's token: Developer Portal → your application → Bot → Reset Token")
    key = _secret_check("IMAGE_API_KEY", is_set(settings.image_api_key), "the relay's API key")

    async def discord_part() -> list[CheckResult]:
        if token.failed:
            return doctor_discord.skipped("DISCORD_TOKEN is not set")
        return await doctor_discord.discord_checks(settings)

    async def relay_part() -> list[CheckResult]:
        if key.failed:
            return doctor_relay.skipped("IMAGE_API_KEY is not set")
        async with aiohttp.ClientSession() as session:
            return await doctor_relay.relay_checks(settings, session, generate=generate)

    discord_results, database_result, relay_results = await asyncio.gather(
        discord_part(), database_check(settings), relay_part())
    return [ok("settings", "settings parse"), token, key, *discord_results, database_result, *relay_results]


def _secret_check(name: str, present: bool, what: str) -> CheckResult:
    if present:
        return ok(f"secrets.{name.lower()}", f"{name} is set")
    return fail(f"secrets.{name.lower()}", f"{name} is not set", f"set it in the environment or .env ({what})")
