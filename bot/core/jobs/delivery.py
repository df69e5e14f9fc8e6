"""Where a job's images go: the protocol the Discord layer implements, and what it is handed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.core.errors import UserFacingError
from bot.core.images.packing import OutgoingFile
from bot.core.jobs.progress import Progress
from bot.core.relay.models import ImageFailure
from bot.storage.jobs import JobRecord


@dataclass(frozen=True)
class ResultBatch:
    """One message worth of finished images; `sizes` maps image index to the relay's "WxH"."""

    job: JobRecord
    files: list[OutgoingFile]
    total_expected: int
    elapsed: float
    sizes: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobOutcome:
    job: JobRecord
    delivered: int
    failures: list[ImageFailure]
    elapsed: float
    error: UserFacingError | None = None
    undelivered: int = 0  # generated but could not be posted anywhere (reported, never silent)


class DeliveryTarget(Protocol):
    """Where a job reports progress and posts its images (implemented by the Discord side)."""

    async def progress(self, job: JobRecord, progress: Progress) -> None: ...

    def file_limit(self) -> int: ...

    async def send_images(self, batch: ResultBatch) -> list[int]:
        """Post the batch; the ids of the messages now holding it (posted, or edited to add it)."""
        ...

    async def finished(self, outcome: JobOutcome) -> None: ...

    async def send_final(self, batch: ResultBatch, outcome: JobOutcome) -> list[int]:
        """Post a job's whole result together with how it ended (`outcome`), as its last word:
        the runner uses it when every image fits in one message, and then calls no `finished`.
        The ids of the messages now holding the images."""
        ...

    async def find_posted(self, job: JobRecord) -> Mapping[int, Sequence[int]]:
        """Messages already carrying images of `job` (message id -> image indices): what an
        interrupted attempt may have posted without recording it."""
        ...
