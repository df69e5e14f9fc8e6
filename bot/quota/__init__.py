"""Per-member image quotas: reserve at submit, commit on delivery, release on failure.

`QuotaService` is the entry point; `service.py` documents the arithmetic.
"""

from bot.quota.errors import MemberBlocked, QuotaError, QuotaExceeded, ServerCapReached
from bot.quota.ledger import LedgerEntry, LedgerKind, ReservationState
from bot.quota.limits import LimitSource
from bot.quota.periods import Period
from bot.quota.service import DIRECT_MESSAGES, QuotaService, Reservation
from bot.quota.settings import GuildQuotaSettings
from bot.quota.status import QuotaStatus

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
