"""What a job is asked to do, and the typed record of it that is stored with the job.

`StoredRequest` is the job row's `request` JSON: the request as the member asked for it, and
where its reference images came from, so Reroll can fetch them again after any restart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.relay.models import GenerationRequest


@dataclass(frozen=True)
class StoredReference:
    """Where one reference image lives. To use it again, fetch `message_id` in `channel_id` and
    pick `attachment_id` (a fresh URL); a slash-command upload has no message, only its `url`
    (signed: it expires after about a day)."""

    attachment_id: int
    filename: str
    url: str
    message_id: int | None = None
    channel_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))  # its fields (asdict would deep-copy each value)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> StoredReference:
        return cls(
            attachment_id=int(value.get("attachment_id") or 0),
            filename=str(value.get("filename") or "image"),
            url=str(value.get("url") or ""),
            message_id=_optional_int(value.get("message_id")),
            channel_id=_optional_int(value.get("channel_id")),
        )


@dataclass(frozen=True)
class StoredRequest:
    """A job's request as stored (never the reference bytes or data URIs)."""

    prompt: str
    size: str
    count: int = 1
    watermark: bool | None = None
    reference_count: int = 0
    references: tuple[StoredReference, ...] = ()
    mode: str = "set"  # "variations": independent takes (see bot/core/jobs/variations.py)
    # The Discord locale of the member who asked (their `interaction.locale`, else the server's):
    # messages posted for this job later, by the runner or after a restart, speak it.
    locale: str | None = None

    @property
    def references_complete(self) -> bool:
        """False when a reference's origin was not recorded, so it cannot be fetched again."""
        return len(self.references) >= self.reference_count

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "references": [reference.to_json() for reference in self.references]}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> StoredRequest:
        references = value.get("references") or []
        watermark = value.get("watermark")
        return cls(
            prompt=str(value.get("prompt") or ""),
            size=str(value.get("size") or ""),
            count=int(value.get("count") or 1),
            watermark=None if watermark is None else bool(watermark),
            reference_count=int(value.get("reference_count") or 0),
            references=tuple(StoredReference.from_json(item) for item in references if isinstance(item, Mapping)),
            mode="variations" if value.get("mode") == "variations" else "set",
            locale=str(value["locale"]) if value.get("locale") else None,
        )


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to run a job; `stored_request()` is what the job row keeps of it."""

    kind: str
    requester_id: int
    guild_id: int | None
    channel_id: int | None
    request: GenerationRequest
    role_ids: tuple[int, ...] = ()
    parent_job_id: str | None = None
    source_message_id: int | None = None
    dedupe_key: str | None = None
    references: Sequence[StoredReference] = field(default_factory=tuple)
    locale: str | None = None

    def stored_request(self) -> StoredRequest:
        request = self.request
        return StoredRequest(
            prompt=request.prompt,
            size=request.size,
            count=request.count,
            watermark=request.watermark,
            reference_count=len(request.references),
            references=tuple(self.references),
            mode="variations" if request.variations else "set",
            locale=self.locale,
        )


def _optional_int(value: object) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None
