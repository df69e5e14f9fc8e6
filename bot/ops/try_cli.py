"""`python -m bot try "prompt" [--size] [--count] [--reference FILE…] [-o DIR]`: the relay alone.

For checking a key, a model or a size without Discord: the request is built and checked as
`/imagine` builds it (flags in the prompt work too), references are read from files and
normalised as the bot normalises uploads, and each image is written to DIR as it arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import aiohttp

from bot.config import ConfigError, Settings
from bot.core.errors import UserFacingError
from bot.core.images.references import check_byte_size, check_counts, encode_references, inspect_reference
from bot.core.jobs.naming import new_job_id, result_filename
from bot.core.jobs.requests import build_request
from bot.core.relay.client import SeedreamClient
from bot.core.relay.models import GeneratedImage, GenerationRequest
from bot.ops.doctor_relay import operator_text
from bot.ops.settings import is_set, load_operator_settings, quiet_logging, redact, secret_values


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("try", help="generate through the relay alone and save the images",
                                 description="Generate through the relay alone (no Discord): progress on the "
                                 "terminal, the images written to DIR. Put the prompt first.")
    parser.add_argument("prompt", help="what to draw; flags such as --ar 16:9 work inside it")
    parser.add_argument("--size", help="1K, 2K, 4K or WIDTHxHEIGHT (default: DEFAULT_SIZE)")
    parser.add_argument("--count", type=int, help="how many images, 1-15 (above 1: one consistent set)")
    parser.add_argument("--reference", action="extend", nargs="+", type=Path, default=[], metavar="FILE",
                        help="reference image file(s), in the order the prompt names them")
    parser.add_argument("-o", "--output", type=Path, default=Path("."), metavar="DIR",
                        help="where to write the images (default: the current directory)")
    parser.set_defaults(run=run)


class TryFailed(Exception):
    """One line for the operator."""


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_operator_settings()
    except ConfigError as error:
        print(f"Configuration error: {error}. Set it in the environment or in .env (see README).", file=sys.stderr)
        return 2
    if not is_set(settings.image_api_key):
        print("Configuration error: IMAGE_API_KEY is required. Set it in the environment or in .env (see README).",
              file=sys.stderr)
        return 2
    quiet_logging(settings)
    secrets = secret_values(settings)
    try:
        files = [(path.name, _read(path)) for path in args.reference]
        _make_directory(args.output)
        return asyncio.run(_try(settings, args, files, lambda line: print(redact(line, secrets), flush=True)))
    except TryFailed as error:
        print(redact(f"error: {error}", secrets), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _try(settings: Settings, args: argparse.Namespace, files: Sequence[tuple[str, bytes]],
               say: Callable[[str], None]) -> int:
    return await generate(settings, await build(settings, args, files), args.output, say)


async def build(settings: Settings, args: argparse.Namespace, files: Sequence[tuple[str, bytes]]
                ) -> GenerationRequest:
    """The request, every option checked before any image is decoded (as the bot orders it)."""
    try:
        check_counts(len(files), 0)
        request = build_request(settings, prompt=args.prompt, requester_id=0, size=args.size, count=args.count,
                                references=[name for name, _ in files])
        images = []
        for name, content in files:
            check_byte_size(name, len(content))
            images.append(await inspect_reference(name, content))
        return replace(request, references=await encode_references(images))
    except UserFacingError as error:
        raise TryFailed(operator_text(error)) from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise TryFailed(f"cannot read {path}: {error.strerror or error}") from None


def _make_directory(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TryFailed(f"cannot write to {path}: {error.strerror or error}") from None


async def generate(settings: Settings, request: GenerationRequest, output: Path, say: Callable[[str], None]) -> int:
    """Ask the relay, write each image as it arrives; 0 when every image came back."""
    references = f", {len(request.references)} reference(s)" if request.references else ""
    say(f"asking {settings.image_api_base_url} ({settings.image_model}) for {request.count} image(s) at "
        f"{request.size}{references}")
    run_id, started, written, failed = f"try-{new_job_id()}", time.monotonic(), 0, 0
    async with aiohttp.ClientSession() as session:
        client = SeedreamClient(
            session, base_url=settings.image_api_base_url, api_key=settings.image_api_key.get_secret_value(),
            model=settings.image_model, response_format=settings.image_response_format,
            stream=settings.image_stream, timeout=settings.relay_timeout_seconds,
            max_retries=settings.relay_max_retries, retry_budget=settings.relay_retry_budget_seconds,
            max_download_bytes=settings.max_download_bytes, result_url_hosts=settings.result_hosts,
        )
        try:
            async for event in client.generate(request):
                seconds = time.monotonic() - started
                if not isinstance(event, GeneratedImage):
                    failed += 1
                    say(f"[{event.index + 1}/{request.count}] {seconds:.1f} s  failed: {operator_text(event.error)}")
                    continue
                path = output / result_filename(run_id, event.index, event.content_type)
                await asyncio.to_thread(path.write_bytes, event.content)
                written += 1
                size = f"{event.size}  " if event.size else ""
                say(f"[{event.index + 1}/{request.count}] {seconds:.1f} s  {size}{len(event.content):,} bytes  "
                    f"→ {path}")
        except UserFacingError as error:
            raise TryFailed(operator_text(error)) from None
    say(f"{written} of {request.count} image(s) in {time.monotonic() - started:.1f} s"
        + (f", {failed} failed" if failed else ""))
    return 0 if written and not failed else 1
