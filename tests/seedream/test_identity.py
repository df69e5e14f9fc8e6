from __future__ import annotations

import pytest

from bot.core.relay.identity import opaque_user_id


def test_opaque_id_is_stable_and_32_hex_chars() -> None:
    first = opaque_user_id(123456789012345678, "secret")
    assert first == opaque_user_id(123456789012345678, "secret")
    assert len(first) == 32
    int(first, 16)


def test_opaque_id_hides_the_discord_id_and_depends_on_the_secret() -> None:
    value = opaque_user_id(123456789012345678, "secret")
    assert "123456789012345678" not in value
    assert value != opaque_user_id(123456789012345678, "other secret")
    assert value != opaque_user_id(123456789012345679, "secret")


def test_opaque_id_matches_hmac_sha256() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"42", hashlib.sha256).hexdigest()[:32]
    assert opaque_user_id(42, "k") == expected


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        opaque_user_id(42, "")
