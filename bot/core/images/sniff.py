"""An image's type from its magic bytes, never from a file name or a declared content type."""

from __future__ import annotations


def sniff_content_type(content: bytes) -> str | None:
    """The MIME type of a JPEG, PNG, WebP or GIF (what the relay returns), else None."""
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(content) >= 12 and content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return None
