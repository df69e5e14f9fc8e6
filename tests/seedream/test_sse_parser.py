"""The SSE parser frames events the way the WHATWG spec says, whatever the chunking."""

from __future__ import annotations

import pytest

from bot.core.relay.sse import SSEEvent, SSEParser

STREAM = (
    b": keep-alive comment\n"
    b"event: image_generation.partial_succeeded\n"
    b'data: {"a": 1,\n'
    b'data: "b": "\xc3\xa9"}\n'
    b"\n"
    b"id: 7\n"
    b"retry: 10\n"
    b"data:no-space\n"
    b"\n"
    b"event: lonely-without-data\n"
    b"\n"
    b"data: [DONE]\n"
    b"\n"
)
EXPECTED = [
    SSEEvent("image_generation.partial_succeeded", '{"a": 1,\n"b": "\u00e9"}'),
    SSEEvent(None, "no-space"),
    SSEEvent(None, "[DONE]"),
]


def parse(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.finish())
    return events


def test_whole_stream_parses_into_frames() -> None:
    assert parse([STREAM]) == EXPECTED


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_crlf_and_cr_line_endings(newline: bytes) -> None:
    assert parse([STREAM.replace(b"\n", newline)]) == EXPECTED


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_byte_by_byte_chunking_gives_the_same_frames(newline: bytes) -> None:
    data = STREAM.replace(b"\n", newline)
    assert parse([data[i : i + 1] for i in range(len(data))]) == EXPECTED


def test_last_frame_without_blank_line_is_kept() -> None:
    assert parse([b"data: tail"]) == [SSEEvent(None, "tail")]


def test_a_frame_is_emitted_as_soon_as_its_blank_line_arrives() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: one\n") == []
    assert parser.feed(b"\ndata: two") == [SSEEvent(None, "one")]


def test_huge_data_line_in_small_chunks_is_linear_enough() -> None:
    payload = b"A" * 8_000_000
    data = b"data: " + payload + b"\n\n"
    events = parse([data[i : i + 16384] for i in range(0, len(data), 16384)])
    assert len(events) == 1 and len(events[0].data) == len(payload)
