"""`QuotaService`: a member's reservations and the moderators' changes, over one database.

`reservations.py` documents the arithmetic; `moderation.py` the changes moderators make.
"""

from __future__ import annotations

from bot.core.quota.moderation import QuotaModeration
from bot.core.quota.reservations import QuotaReservations
from bot.storage.quota_reservations import Reservation

__all__ = ["DIRECT_MESSAGES", "QuotaService", "Reservation"]

DIRECT_MESSAGES = 0
"""Guild id to use for direct messages: no guild settings exist, so the global default applies."""


class QuotaService(QuotaReservations, QuotaModeration):
    """The entry point: both halves share `QuotaBase`'s database, defaults and clock."""
