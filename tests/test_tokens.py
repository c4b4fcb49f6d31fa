"""Link tokens: purpose-bound, rotation-friendly, and identical to itsdangerous' own `dumps`."""

from __future__ import annotations

import hashlib

import pytest
from itsdangerous import URLSafeTimedSerializer

from newsletter.tokens import InvalidToken, Purpose, TokenSigner


def test_sign_is_byte_identical_to_itsdangerous_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against plain itsdangerous serializers, not ours: the cached key and the shared payload
    must change nothing, whatever order uids and purposes come in."""
    monkeypatch.setattr("time.time", lambda: 1_800_000_000.0)
    signer = TokenSigner(["old", "new"])
    plain = {purpose: URLSafeTimedSerializer(["new", "old"], salt=f"newsletter.{purpose.value}",
                                             signer_kwargs={"digest_method": hashlib.sha256})
             for purpose in Purpose}
    for uid in ("abc123", "abc123", "zz-9", "", "abc123", "ünï"):
        for purpose in (*Purpose, Purpose.UNSUBSCRIBE):
            assert signer.sign(purpose, uid) == plain[purpose].dumps(uid)


def test_tokens_verify_for_their_purpose_only_and_survive_rotation() -> None:
    old = TokenSigner(["old"])
    token = old.sign(Purpose.UNSUBSCRIBE, "uid-1")
    rotated = TokenSigner(["new", "old"])
    assert rotated.verify(Purpose.UNSUBSCRIBE, token) == "uid-1"
    with pytest.raises(InvalidToken):
        rotated.verify(Purpose.PREFERENCES, token)
    with pytest.raises(InvalidToken):
        TokenSigner(["new"]).verify(Purpose.UNSUBSCRIBE, token)
