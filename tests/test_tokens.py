"""Link tokens: purpose-bound, rotation-friendly, and identical to itsdangerous' own `dumps`."""

from __future__ import annotations

import pytest

from newsletter.tokens import InvalidToken, Purpose, TokenSigner


def test_sign_is_byte_identical_to_itsdangerous_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: 1_800_000_000.0)
    signer = TokenSigner(["new", "old"])
    for purpose in Purpose:
        assert signer.sign(purpose, "abc123") == signer._serializers[purpose].dumps("abc123")


def test_tokens_verify_for_their_purpose_only_and_survive_rotation() -> None:
    old = TokenSigner(["old"])
    token = old.sign(Purpose.UNSUBSCRIBE, "uid-1")
    rotated = TokenSigner(["new", "old"])
    assert rotated.verify(Purpose.UNSUBSCRIBE, token) == "uid-1"
    with pytest.raises(InvalidToken):
        rotated.verify(Purpose.PREFERENCES, token)
    with pytest.raises(InvalidToken):
        TokenSigner(["new"]).verify(Purpose.UNSUBSCRIBE, token)
