"""200 only after the transaction commits: a store that fails half-way answers 503, keeps
nothing of the request, and the provider's retry is then recorded in full."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from newsletter.context import Newsletter

from .webhooks_support import (
    dump,
    live_site,
    postmark_auth,
    postmark_bounce,
    sent_edition,
    show,
    webhook_settings,
)

pytestmark = pytest.mark.process

ANN = "ann@example.org"


def _fail_suppressions(nl: Newsletter) -> None:
    """The database refuses every new suppression, as a full disk or a lost primary would: the
    event row is already inserted when the transaction fails."""
    with nl.engine.begin() as connection:
        if nl.engine.dialect.name == "sqlite":
            connection.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON suppressions "
                                    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"))
        else:
            connection.execute(text("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                                    "RAISE EXCEPTION 'could not extend file'; END $$ LANGUAGE plpgsql"))
            connection.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON suppressions "
                                    "FOR EACH ROW EXECUTE FUNCTION refuse()"))


def _heal(nl: Newsletter) -> None:
    with nl.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER refuse" if nl.engine.dialect.name == "sqlite"
                                else "DROP TRIGGER refuse ON suppressions"))


def test_a_failing_store_answers_503_and_the_retry_records_it(make_newsletter: Any, run_cli: Any) -> None:
    nl = make_newsletter(**webhook_settings())
    sent = sent_edition(nl, [ANN])
    body = dump(postmark_bounce(ANN, sent.delivery[ANN], sent.message_id[ANN]))
    _fail_suppressions(nl)
    with live_site(nl) as site:
        failed = site.post("/webhooks/postmark", body, postmark_auth())
        assert failed.status == 503 and failed.headers["Retry-After"] == "60"
        record = show(run_cli, ANN)
        assert record["feedback"] == [] and record["subscriber"]["status"] == "active"
        _heal(nl)
        retried = site.post("/webhooks/postmark", body, postmark_auth())
    assert retried.status == 200 and retried.json()["stored"] == 1
    record = show(run_cli, ANN)
    assert [e["kind"] for e in record["feedback"]] == ["bounce_hard"]
    assert record["subscriber"]["status"] == "bounced"
