"""A py-spy sampling profile of a running process, summarised for a terminal.

`Profile(pid)` attaches `py-spy record --gil` (samples only while a thread holds the GIL, i.e.
CPU the interpreter spends) and, on exit, reads its raw collapsed stacks. `summary()` splits the
samples by the library whose code was running (the innermost frame of a known package) and lists
the bot's own functions by inclusive share, so the next speed change starts from data.
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

# Innermost-first: the first of these found in a stack, from the leaf up, takes the sample.
LIBRARIES = ("sqlalchemy", "aiosqlite", "asyncpg", "sqlite3", "aiohttp", "discord", "yarl", "multidict",
             "json", "orjson", "PIL", "pydantic", "prometheus_client", "asyncio", "uvloop", "greenlet")
OURS = ("bot", "cogs")
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")


def py_spy() -> str:
    """The py-spy executable next to this interpreter (the bench extra installs it), else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("--profile needs py-spy: pip install -c requirements/constraints.txt -e '.[bench]'")
    return found


class Profile:
    """`with Profile(pid) as profile: ...` samples `pid` for the block; then `profile.summary()`."""

    def __init__(self, pid: int, rate: int = 200) -> None:
        self._pid = pid
        self._rate = rate
        self._scratch = tempfile.TemporaryDirectory(prefix="bench-profile-")
        self._output = Path(self._scratch.name) / "stacks.txt"
        self._process: subprocess.Popen[bytes] | None = None
        self.stacks: collections.Counter[tuple[str, ...]] = collections.Counter()

    def __enter__(self) -> Profile:
        self._process = subprocess.Popen(
            [py_spy(), "record", "--pid", str(self._pid), "--format", "raw", "--gil", "--nonblocking",
             "--rate", str(self._rate), "--output", str(self._output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGINT)
        _, errors = self._process.communicate(timeout=60)
        if not self._output.exists():
            raise SystemExit(f"py-spy wrote no profile: {errors.decode(errors='replace').strip()}")
        for line in self._output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack:
                self.stacks[tuple(stack.split(";"))] += int(count)
        self._scratch.cleanup()

    def summary(self, top: int = 25) -> str:
        total = sum(self.stacks.values())
        if not total:
            return "profile: no samples (did the process run any Python while sampled?)"
        by_library: collections.Counter[str] = collections.Counter()
        ours: collections.Counter[str] = collections.Counter()
        leaves: collections.Counter[str] = collections.Counter()
        own_leaves: collections.Counter[str] = collections.Counter()
        for stack, count in self.stacks.items():
            frames = [parsed for frame in stack if (parsed := FRAME.match(frame))]
            by_library[_owner(frames)] += count
            if frames:
                leaves[f"{frames[-1]['function']} ({frames[-1]['file']})"] += count
            if _owner(frames) == "the bot's own code":
                innermost = next(m for m in reversed(frames) if _package(m["file"]) in OURS)
                own_leaves[f"{innermost['function']} ({innermost['file']})"] += count
            for name in {f"{m['function']} ({m['file']})" for m in frames if _package(m["file"]) in OURS}:
                ours[name] += count
        lines = [f"profile: {total} samples holding the GIL; share by the code that ran (innermost library):"]
        lines += [f"  {count / total:6.1%}  {name}" for name, count in by_library.most_common()]
        lines.append(f"the bot's own functions, inclusive (top {top}):")
        lines += [f"  {count / total:6.1%}  {name}" for name, count in ours.most_common(top)]
        lines.append(f"the bot's own functions, by the samples the bot's own code took in them (top {top}):")
        lines += [f"  {count / total:6.1%}  {name}" for name, count in own_leaves.most_common(top)]
        lines.append(f"functions by their own samples, any library (top {top}):")
        lines += [f"  {count / total:6.1%}  {name}" for name, count in leaves.most_common(top)]
        return "\n".join(lines)


def _package(file: str) -> str:
    return file.replace("\\", "/").split("/", 1)[0].removesuffix(".py")


def _owner(frames: list[re.Match[str]]) -> str:
    for frame in reversed(frames):
        package = _package(frame["file"])
        if package in LIBRARIES:
            return package
        if package in OURS:
            return "the bot's own code"
    return "other (interpreter, standard library)"
