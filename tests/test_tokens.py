"""Link tokens: purpose-bound, rotation-friendly, and identical to itsdangerous' own `dumps`."""

from __future__ import annotations

import hashlib
import uuid

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
    for uid in ("abc123", "abc123", "zz-9", "", "abc123", "ünï", uuid.uuid4().hex):
        for purpose in (*Purpose, Purpose.UNSUBSCRIBE):
            assert signer.sign(purpose, uid) == plain[purpose].dumps(uid)


def test_the_timestamp_follows_the_clock_from_one_second_to_the_next(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The signer encodes the timestamp once a second: a link made a second later carries the
    later time, as itsdangerous' own `dumps` would."""
    now = [1_800_000_000.2]
    monkeypatch.setattr("time.time", lambda: now[0])
    signer = TokenSigner(["key"])
    plain = URLSafeTimedSerializer(["key"], salt="newsletter.unsubscribe",
                                   signer_kwargs={"digest_method": hashlib.sha256})
    first = signer.sign(Purpose.UNSUBSCRIBE, "uid-1")
    now[0] = 1_800_000_001.1
    second = signer.sign(Purpose.UNSUBSCRIBE, "uid-1")
    assert first != second
    assert second == plain.dumps("uid-1")
    now[0] = 1_800_000_000.2
    assert plain.dumps("uid-1") == first


def test_a_uid_that_would_compress_still_signs_to_a_token_that_verifies() -> None:
    """Payloads are never zlib-compressed (a random uid does not shrink): for a uid that would,
    the token differs from `dumps` but reads back the same, here and in plain itsdangerous."""
    uid = "0" * 64
    signer = TokenSigner(["key"])
    token = signer.sign(Purpose.UNSUBSCRIBE, uid)
    plain = URLSafeTimedSerializer(["key"], salt="newsletter.unsubscribe",
                                   signer_kwargs={"digest_method": hashlib.sha256})
    assert plain.dumps(uid).startswith(".") and not token.startswith(".")
    assert signer.verify(Purpose.UNSUBSCRIBE, token) == uid
    assert plain.loads(token) == uid


def test_tokens_verify_for_their_purpose_only_and_survive_rotation() -> None:
    old = TokenSigner(["old"])
    token = old.sign(Purpose.UNSUBSCRIBE, "uid-1")
    rotated = TokenSigner(["new", "old"])
    assert rotated.verify(Purpose.UNSUBSCRIBE, token) == "uid-1"
    with pytest.raises(InvalidToken):
        rotated.verify(Purpose.PREFERENCES, token)
    with pytest.raises(InvalidToken):
        TokenSigner(["new"]).verify(Purpose.UNSUBSCRIBE, token)
