"""A member's own defaults (`/prefer`), kept per member across servers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MemberPreferences:
    """What a member chose with `/prefer`; None: not chosen (the server's default applies)."""

    size: str | None = None
    count: int | None = None
    watermark: bool | None = None

    @property
    def empty(self) -> bool:
        return self.size is None and self.count is None and self.watermark is None


NO_PREFERENCES = MemberPreferences()
