"""Per-member image quotas: reserve at submit, commit on delivery, release on failure.

`QuotaService` is the entry point; `reservations.py` documents the arithmetic.
"""

from bot.core.quota.errors import MemberBlocked, QuotaError, QuotaExceeded, ServerCapReached
from bot.core.quota.limits import LimitSource
from bot.core.quota.periods import Period
from bot.core.quota.service import DIRECT_MESSAGES, QuotaService, Reservation
from bot.core.quota.status import GuildQuotaSettings, QuotaStatus
from bot.storage.quota_ledger import LedgerEntry, LedgerKind, ReservationState

__all__ = [
    "DIRECT_MESSAGES",
    "GuildQuotaSettings",
    "LedgerEntry",
    "LedgerKind",
    "LimitSource",
    "MemberBlocked",
    "Period",
    "QuotaError",
    "QuotaExceeded",
    "QuotaService",
    "QuotaStatus",
    "Reservation",
    "ReservationState",
    "ServerCapReached",
]
