"""`Transport.send(..., on_result=)`: every transport tells each result once, as soon as it is
known, before `send` returns. SMTP's cases are in test_smtp_pipelining.py, the HTTP providers'
in test_transport_http.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.errors import ConfigError
from newsletter.mail.message import Outcome, OutgoingMessage, SendResult
from newsletter.transports.memory import MemoryTransport
from newsletter.transports.outbox import OutboxTransport


def messages(count: int) -> list[OutgoingMessage]:
    return [OutgoingMessage(i, "bounces@pprnet.example", f"reader{i}@example.org",
                            b"Subject: hi\r\n\r\nhello\r\n") for i in range(1, count + 1)]


def test_memory_tells_each_result_in_order_as_it_answers() -> None:
    transport = MemoryTransport({"reader2@example.org": [Outcome.TEMPORARY]})
    told: list[tuple[int, str, int]] = []
    results = transport.send(messages(3), on_result=lambda r: told.append(
        (r.delivery_id, r.outcome.value, len(transport.messages))))
    assert told == [(1, "sent", 1), (2, "temporary", 2), (3, "sent", 3)]
    assert [r.delivery_id for r in results] == [1, 2, 3]


def test_memory_config_error_tells_nothing() -> None:
    transport = MemoryTransport({"reader2@example.org": [ConfigError("bad key")]})
    told: list[SendResult] = []
    with pytest.raises(ConfigError):
        transport.send(messages(3), on_result=told.append)
    assert told == []


def test_outbox_tells_each_file_once_it_is_in_place(tmp_path: Path) -> None:
    transport = OutboxTransport(tmp_path)
    seen: list[tuple[int, int]] = []
    results = transport.send(messages(3), on_result=lambda r: seen.append(
        (r.delivery_id, len(list(tmp_path.glob("*.eml"))))))
    assert seen == [(1, 1), (2, 2), (3, 3)]
    assert [r.outcome for r in results] == [Outcome.SENT] * 3
