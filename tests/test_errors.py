"""The error tree: one meaning per class, so a caller never has to guess which one it caught.

ConfigError stands outside NewsletterError; another live send is SendInProgress, an operation
that does not fit the record's state is StateError, StoreError is left for an unusable store;
library errors name fields (`at`), and only the CLI speaks of its options (`--at`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from newsletter.content.models import Edition, EditionStatus
from newsletter.content.store import assemble_edition
from newsletter.context import Newsletter
from newsletter.db import utcnow
from newsletter.errors import (
    ConfigError,
    ContentError,
    NewsletterError,
    SendInProgress,
    StateError,
    StoreError,
)
from newsletter.schedule import process
from newsletter.schedule.editions import local_to_utc, schedule, unschedule, zone
from newsletter.sending import control
from newsletter.sending.outcomes import SendReport
from newsletter.sending.run import send_edition
from newsletter.sending.store import SqlSendStore
from newsletter.transports.memory import MemoryTransport

from .builders import MONTH, load_month
from .conftest import RunCli, make_config


@pytest.fixture
def nl(newsletter: Newsletter) -> Newsletter:
    load_month(newsletter)
    return newsletter


def set_status(nl: Newsletter, status: EditionStatus) -> None:
    with nl.session() as session:
        session.execute(update(Edition).where(Edition.month == MONTH).values(status=status))


def test_a_config_error_is_not_a_newsletter_error() -> None:
    assert not issubclass(ConfigError, NewsletterError)
    with pytest.raises(ConfigError):
        try:
            raise ConfigError("NEWSLETTER_API_KEY is not set")
        except NewsletterError:  # what "log it and carry on" code catches
            pytest.fail("a configuration error was swallowed")


def test_each_error_means_one_thing() -> None:
    for specific in (SendInProgress, StateError):
        assert issubclass(specific, NewsletterError)
        assert not issubclass(specific, (StoreError, ContentError))
    assert not issubclass(StoreError, (SendInProgress, StateError))


def test_a_second_start_while_the_first_run_is_live_is_send_in_progress(nl: Newsletter) -> None:
    store = SqlSendStore(nl)
    first = store.start_run(MONTH, utcnow(), resend_uncertain=False)
    with pytest.raises(SendInProgress, match="another send of this edition is running"):
        store.start_run(MONTH, utcnow(), resend_uncertain=False)
    with pytest.raises(SendInProgress):
        send_edition(nl, MONTH, transport=MemoryTransport())
    store.finish_run(first.edition.id or 0, first.run_id, utcnow())
    assert send_edition(nl, MONTH, transport=MemoryTransport()).sent == 3


def test_scheduling_a_sent_edition_is_a_state_error(nl: Newsletter) -> None:
    set_status(nl, EditionStatus.SENT)
    with pytest.raises(StateError, match="the 2015-01 edition is sent; only a draft, scheduled or "
                                         "missed edition can be scheduled"):
        schedule(nl, MONTH, "2030-01-01 09:00", "UTC", now=datetime(2029, 1, 1, tzinfo=UTC))
    with pytest.raises(StateError, match="is sent, not scheduled"):
        unschedule(nl, MONTH)


def test_steering_or_sending_an_edition_in_the_wrong_state_is_a_state_error(nl: Newsletter) -> None:
    with pytest.raises(StateError, match="cannot pause the 2015-01 edition: it is draft"):
        control.pause(nl, MONTH)
    control.cancel(nl, MONTH)
    with pytest.raises(StateError, match="cannot resume the 2015-01 edition: it is cancelled"):
        control.resume(nl, MONTH)
    with pytest.raises(StateError, match="the 2015-01 edition is cancelled"):
        send_edition(nl, MONTH, transport=MemoryTransport())
    with nl.session() as session, pytest.raises(StateError, match="can no longer be re-assembled"):
        assemble_edition(session, MONTH)


def test_a_paused_edition_says_how_to_go_on(nl: Newsletter) -> None:
    set_status(nl, EditionStatus.SENDING)
    control.pause(nl, MONTH)
    with pytest.raises(StateError, match="is paused: run `newsletter resume 2015-01` first"):
        send_edition(nl, MONTH, transport=MemoryTransport())


def test_library_errors_name_the_field_not_a_command_line_option() -> None:
    with pytest.raises(ContentError) as bad_time:
        local_to_utc("tomorrow", "UTC")
    with pytest.raises(ContentError) as bad_zone:
        zone("Mars/Olympus")
    assert (bad_time.value.field, bad_zone.value.field) == ("at", "timezone")
    assert str(bad_time.value).startswith("at: 'tomorrow' is not a time like")


def test_the_cli_names_its_options(nl: Newsletter, database_url: str, run_cli: RunCli) -> None:
    result = run_cli("schedule", MONTH, "--at", "tomorrow", code=1)
    assert "Error: --at: 'tomorrow' is not a time like 2026-12-01 09:00" in result.output
    result = run_cli("schedule", MONTH, "--at", "2030-01-01 09:00", "--tz", "Mars/Olympus", code=1)
    assert "Error: --tz: unknown time zone 'Mars/Olympus'" in result.output


def test_an_unmigrated_store_is_still_a_store_error(tmp_path: Path) -> None:
    empty = Newsletter.open(make_config(f"sqlite:///{tmp_path / 'empty.db'}"))
    try:
        with pytest.raises(StoreError, match="run `newsletter init` first"):
            empty.require_ready()
    finally:
        empty.close()


@pytest.mark.parametrize(("error", "told"), [
    (SendInProgress("another send of this edition is running (pid 1 on elsewhere)"), False),
    (ConfigError("SMTP 127.0.0.1:25 refused the login for 'digest'"), True),
    (StateError("the 2015-01 edition is paused"), True),
])
def test_the_scheduler_tells_the_editor_of_every_failure_but_another_live_send(
        nl: Newsletter, monkeypatch: pytest.MonkeyPatch, error: Exception, told: bool) -> None:
    def send(*args: object, **kwargs: object) -> SendReport:
        raise error

    monkeypatch.setattr(process, "send_edition", send)
    notes: list[tuple[str, BaseException]] = []

    class Notes:
        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            if name == "failed":
                return lambda month, err: notes.append((month, err))
            return lambda *args, **kwargs: None

    assert process.send_scheduled(nl, MONTH, notifier=Notes(), resume=True) is None  # type: ignore[arg-type]
    assert notes == ([(MONTH, error)] if told else [])
