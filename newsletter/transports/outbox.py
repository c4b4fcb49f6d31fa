"""Writes each message to a folder as an .eml file: for previews, audits and air-gapped sends."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError
from ..mail.message import Outcome, OutgoingMessage, ResultCallback, SendResult


class OutboxTransport:
    name = "outbox"
    batch_size = 500

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"outbox folder {self.folder}: {err}") from err

    def send(self, batch: Sequence[OutgoingMessage], *,
             on_result: ResultCallback | None = None) -> list[SendResult]:
        results = []
        for message in batch:
            results.append(result := self._write(message))
            if on_result is not None:
                on_result(result)
        return results

    def _write(self, message: OutgoingMessage) -> SendResult:
        final = self.folder / f"{message.delivery_id:09d}.eml"
        partial = final.with_suffix(".eml.part")
        try:
            with open(partial, "wb") as handle:
                handle.write(message.data)
            os.replace(partial, final)
        except OSError as err:
            return SendResult(message.delivery_id, Outcome.TEMPORARY, detail=f"outbox: {err}")
        return SendResult(message.delivery_id, Outcome.SENT, provider_id=final.name)

    def close(self) -> None:
        pass
