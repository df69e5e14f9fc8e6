"""The `user` value sent to the relay: stable per member, but not the Discord id itself."""

from __future__ import annotations

import hashlib
import hmac

OPAQUE_ID_LENGTH = 32


def opaque_user_id(discord_user_id: int, secret: str) -> str:
    """HMAC-SHA256 of the Discord id under `secret`, hex, truncated to 32 characters.

    The relay can still tell members apart (abuse tracking), but cannot map the value back
    to a Discord account without the secret. An empty secret would make the digest a plain
    hash of an enumerable id, so it is refused.
    """
    if not secret:
        raise ValueError("opaque_user_id needs a non-empty secret")
    digest = hmac.new(secret.encode("utf-8"), str(int(discord_user_id)).encode("ascii"), hashlib.sha256)
    return digest.hexdigest()[:OPAQUE_ID_LENGTH]
