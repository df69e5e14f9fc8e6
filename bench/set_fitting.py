"""A 15-image 4K set fitted for Discord's upload limit: the event loop's longest pause and peak memory.

    .venv/bin/python -m bench.set_fitting [--images 15] [--side 4096] [--file-limit-mib 10]

Each image is a noisy PNG far above the limit (noise does not compress), so every one is
decoded and re-encoded to JPEG in worker threads, as a delivery does (`fit_images`). A ticker
on the event loop records its longest pause meanwhile: the gateway's heartbeats and every other
job wait that long. Targets (the performance issue): longest pause <= 50 ms, peak RSS <= 150 MiB
above the process's own.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import threading
import time

import psutil
from PIL import Image

from bot.core.images.packing import fit_images
from bot.core.relay.models import GeneratedImage
from bot.ops import interpreter


def noisy_png(side: int) -> bytes:
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


async def longest_pause(work: asyncio.Future[object], every: float = 0.005) -> float:
    """Tick every `every` seconds until `work` is done; the worst lateness of a tick."""
    worst = 0.0
    while not work.done():
        before = time.perf_counter()
        await asyncio.sleep(every)
        worst = max(worst, time.perf_counter() - before - every)
    return worst


async def run(images: int, side: int, file_limit: int) -> None:
    png = await asyncio.to_thread(noisy_png, side)
    batch = [GeneratedImage(index=n, content=png, size=f"{side}x{side}", content_type="image/png")
             for n in range(images)]
    process = psutil.Process()
    baseline = peak = process.memory_info().rss
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.01):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    before = interpreter.tune()  # as the bot runs (its switch interval decides the loop's waits)
    try:
        fitting = asyncio.ensure_future(fit_images(batch, job_id="bench", file_limit=file_limit))
        pause = await longest_pause(fitting)
        messages = fitting.result()
    finally:
        interpreter.restore(before)
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    sizes = [len(file.content) for message in messages for file in message]
    print(f"{images} x {side}x{side} noisy PNG ({len(png) / 2**20:.0f} MiB each) fitted under "
          f"{file_limit / 2**20:.0f} MiB: {len(messages)} message(s), JPEGs {min(sizes) / 2**20:.1f}-"
          f"{max(sizes) / 2**20:.1f} MiB, {seconds:.1f} s")
    print(f"longest event-loop pause   {pause * 1000:.0f} ms")
    print(f"peak memory                {peak / 2**20:.0f} MiB (+{(peak - baseline) / 2**20:.0f} MiB "
          "above the process before fitting)")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=15)
    parser.add_argument("--side", type=int, default=4096)
    parser.add_argument("--file-limit-mib", type=float, default=10.0)
    return parser.parse_args(argv)


def main() -> None:
    args = parse()
    asyncio.run(run(args.images, args.side, int(args.file_limit_mib * 2**20)))


if __name__ == "__main__":
    main()
