"""Entry point: `python -m bot` (or the `seedream-bot` console script) runs the bot;
`doctor`, `sync` and `try` are operator tools (bot/ops, README: Operating the bot)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import discord

from bot.config import ConfigError, load_settings
from bot.logging_setup import configure_logging
from bot.ops import doctor, sync_cli, try_cli
from bot.ops.startup import StartupError, database_password, run_bot


def main(argv: Sequence[str] | None = None) -> None:
    prog = "seedream-bot" if Path(sys.argv[0]).name == "seedream-bot" else "python -m bot"
    parser = argparse.ArgumentParser(prog=prog, description="Seedream Discord bot. Without a command it runs the bot.")
    commands = parser.add_subparsers(title="operator commands", metavar="COMMAND")
    for command in (doctor, sync_cli, try_cli):
        command.add_parser(commands)
    args = parser.parse_args(argv)
    if hasattr(args, "run"):
        raise SystemExit(args.run(args))
    serve()


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (Linux and macOS): the same asyncio API, with
    the loop's own work (callbacks, sockets, timers) in C. Elsewhere asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def serve() -> None:
    """Run the bot until it is stopped (no command given)."""
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"Configuration error: {error}. Set it in the environment or in .env (see README).",
              file=sys.stderr)
        raise SystemExit(2) from None
    secrets = [settings.discord_token, settings.image_api_key, settings.user_id_secret]
    values = [secret.get_secret_value() for secret in secrets if secret is not None]
    configure_logging(settings.log_level, [*values, database_password(settings.database_url)], settings.log_format)
    from bot.app import create_bot

    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(run_bot(settings, create_bot))  # retries Discord; see bot/ops/startup.py
    except StartupError as error:
        logging.getLogger("bot").error("%s", error)
        raise SystemExit(1) from None
    except discord.LoginFailure:
        print("Discord rejected DISCORD_TOKEN. Check the bot token in the Developer Portal.", file=sys.stderr)
        raise SystemExit(1) from None
    except discord.PrivilegedIntentsRequired:
        print("Discord refused a privileged intent; enable it in the Developer Portal (see README).",
              file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
