"""An incremental Server-Sent Events parser (WHATWG framing), independent of aiohttp.

Frames may arrive split anywhere, including inside a UTF-8 sequence or between `\\r` and
`\\n`; a frame's `data:` lines are joined with `\\n`. Lines are scanned once, so a 20 MB
`b64_json` frame delivered in small chunks stays linear. A frame (or a line) longer than
`max_frame` characters raises `FrameTooLarge` as soon as it passes the limit, before it
is held in memory whole.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass

_EOL = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class SSEEvent:
    event: str | None
    data: str


class FrameTooLarge(ValueError):
    """A frame passed the parser's `max_frame` characters."""


class SSEParser:
    def __init__(self, max_frame: int | None = None) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._max_frame = max_frame
        self._line_parts: list[str] = []
        self._line_size = 0
        self._frame_size = 0
        self._pending_cr = False
        self._first_line = True
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse a chunk; return the frames it completed."""
        return self._feed_text(self._decoder.decode(chunk))

    def finish(self) -> list[SSEEvent]:
        """End of stream: flush a last line and a last frame even without a blank line.

        The SSE spec drops an unterminated final frame; relays sometimes omit the trailing
        blank line, so it is kept here.
        """
        events = self._feed_text(self._decoder.decode(b"", final=True))
        if self._line_parts:
            event = self._line(self._take_line())
            if event is not None:
                events.append(event)
        if self._data:
            events.append(SSEEvent(self._event, "\n".join(self._data)))
        self._event, self._data, self._frame_size = None, [], 0
        return events

    def _add_part(self, part: str) -> None:
        self._line_parts.append(part)
        self._line_size += len(part)
        if self._max_frame is not None and self._frame_size + self._line_size > self._max_frame:
            raise FrameTooLarge(f"an event-stream frame passed {self._max_frame} characters")

    def _take_line(self) -> str:
        line = "".join(self._line_parts)
        self._line_parts.clear()
        self._line_size = 0
        return line

    def _feed_text(self, text: str) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        start = 0
        if self._pending_cr and text.startswith("\n"):
            start = 1
        if text:
            self._pending_cr = False
        for match in _EOL.finditer(text, start):
            self._add_part(text[start : match.start()])
            event = self._line(self._take_line())
            if event is not None:
                events.append(event)
            start = match.end()
            if match.group() == "\r" and start == len(text):
                self._pending_cr = True  # a "\n" may follow in the next chunk
        if start < len(text):
            self._add_part(text[start:])
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if self._first_line:
            self._first_line = False
            line = line.removeprefix("\ufeff")
        if not line:
            if not self._data:
                self._event = None
                return None
            event = SSEEvent(self._event, "\n".join(self._data))
            self._event, self._data, self._frame_size = None, [], 0
            return event
        if line.startswith(":"):
            return None
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
            self._frame_size += len(value) + 1
        elif field == "event":
            self._event = value or None
        return None


async def aiter_sse(
    chunks: AsyncIterable[bytes], max_frame: int | None = None
) -> AsyncGenerator[SSEEvent, None]:
    """Frames from a byte stream, yielded as soon as each is complete."""
    parser = SSEParser(max_frame)
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
    for event in parser.finish():
        yield event
