"""Editions: the list of months, one month's edition (assemble, order, subject, preheader, intro,
checks, test send) and the preview as a reader (page, framed message, who gets what).

Every action is a plain form (moves are submit buttons of the one edition form, so nothing typed
is lost); edition.js adds drag-to-reorder. The framed preview is the message a real send
composes, served with its own sandboxing CSP.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

from flask import abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from newsletter.content.assemble import PREHEADER_LIMIT, SUBJECT_LIMIT, for_variant
from newsletter.content.assemble import month_title as title_of
from newsletter.content.history_models import EditorialUpdate
from newsletter.content.models import Edition, EditionItem, Summary, SummaryStatus
from newsletter.content.store import (
    EDITABLE,
    assemble_edition,
    edit_edition,
    edition_content,
    edition_months,
    list_summaries,
)
from newsletter.content.updates import UpdateRow, check_updates
from newsletter.content.variants import parse_variant_key, variant_for, variant_language
from newsletter.db.models import Topic
from newsletter.domain import EditionContent
from newsletter.editors import audit
from newsletter.errors import ContentError, NewsletterError, StateError
from newsletter.i18n import DEFAULT_LANGUAGE, normalise_language
from newsletter.mail.compose import Composer
from newsletter.preview import Reader, preview_message, subscriber_reader
from newsletter.schedule.editions import check_sendable
from newsletter.sending.planner import count_variants
from newsletter.sending.test_copy import send_test_copy
from newsletter.text import line_problem
from subscribers.addresses import InvalidAddress, normalise_email
from subscribers.models import Subscriber, Suppression
from subscribers.ratelimit import SlidingWindowLimiter

from .auth import client_address, current_editor, newsletter, requires
from .common import month_or_404
from .views import blueprint

INTRO_LIMIT = 5000
FRAME_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; sandbox; "
             "frame-ancestors 'self'")
WIDTHS = {"desktop": 600, "phone": 375}
CHECKS_KEPT = 64
"""Answers kept in memory per kind (checks, composers, counts), per process, until what they
read changes."""
AUDIENCE_SECONDS = 60
"""Variant counts are counted afresh at least this often (and at once for a new subscriber)."""
T = TypeVar("T")
CHECKS = (("count", "2 or 3 summaries, all ready"), ("renders", "Every variant renders"),
          ("size", "Under Gmail's clipping size (102 KB)"), ("links", "Every link is absolute"),
          ("retractions", "No unacknowledged retraction"))


def test_limits() -> SlidingWindowLimiter:
    """Test sends per editor: 10 in 10 minutes (in-process, like the sign-in limits)."""
    return current_app.extensions.setdefault("console_test_sends", SlidingWindowLimiter(10, 600))


def _sentence(err: NewsletterError) -> str:
    """A library error as a message next to a field: its reason, as a sentence."""
    reason = str(getattr(err, "reason", None) or err)
    return f"{reason[:1].upper()}{reason[1:]}."


def _edition(db: Session, month: str) -> Edition | None:
    """The month's edition with its items, their summaries and topics, in three queries."""
    return db.scalar(select(Edition).where(Edition.month == month).options(
        selectinload(Edition.items).joinedload(EditionItem.summary)
        .selectinload(Summary.topics)))


def _topics(db: Session) -> list[tuple[str, str]]:
    return [(t.slug, t.name) for t in db.scalars(select(Topic).order_by(Topic.position))]


def _kind(problem: str) -> str:
    """Which of CHECKS a `check_sendable` reason belongs to."""
    if problem.startswith("the edition has") or " is draft, not ready" in problem:
        return "count"
    if problem.startswith("summary #"):
        return "retractions"
    if "Gmail clips" in problem:
        return "size"
    return "links" if "link is not absolute" in problem else "renders"


def _fingerprint(db: Session, edition: Edition) -> tuple[object, ...]:
    """Everything the checks read: the edition, its items and their summaries, their notices."""
    items = tuple((i.summary_id, i.position, i.summary.updated_at, i.summary.status)
                  for i in edition.items)
    notices = tuple(db.execute(select(EditorialUpdate.id, EditorialUpdate.acknowledged_at).where(
        EditorialUpdate.summary_id.in_([i[0] for i in items])).order_by(EditorialUpdate.id)))
    return (edition.id, edition.updated_at, edition.subject, edition.preheader, edition.intro_md,
            items, notices)


def _checks(db: Session, edition: Edition) -> tuple[list[tuple[str, list[str]]], list[UpdateRow]]:
    """`schedule`'s own checks, from the notices already stored (asking Crossref is the summary
    page's action): each named check with its reasons (none: passed), and those notices.
    Rendering every variant
    takes a quarter of a second, so the answer is kept until something it reads changes."""
    def run() -> tuple[list[tuple[str, list[str]]], list[UpdateRow]]:
        nl = newsletter()
        problems = check_sendable(nl, edition.month, ask_crossref=False)
        return ([(label, [p for p in problems if _kind(p) == kind]) for kind, label in CHECKS],
                check_updates(nl, edition.month, ask=False).rows)

    return _kept("edition_checks", _fingerprint(db, edition), run)


@dataclass
class EditionForm:
    subject: str = ""
    preheader: str = ""
    intro: str = ""
    order: list[int] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def _read_form(edition: Edition) -> EditionForm:
    f = request.form
    form = EditionForm(f.get("subject", "")[:1000].strip(), f.get("preheader", "")[:1000].strip(),
                       f.get("intro", "")[:INTRO_LIMIT + 1000].replace("\r\n", "\n").strip())
    form.order = [int(v) for v in f.getlist("item")[:50] if v.isdigit() and len(v) < 10]
    for name, limit in (("subject", SUBJECT_LIMIT), ("preheader", PREHEADER_LIMIT)):
        value = getattr(form, name)
        problem = line_problem(value)
        if problem:
            form.errors[name] = f"Write it on one line ({problem})."
        elif len(value) > limit:
            form.errors[name] = f"At most {limit} characters (this has {len(value)})."
    if len(form.intro) > INTRO_LIMIT:
        form.errors["intro"] = f"At most {INTRO_LIMIT} characters (this has {len(form.intro)})."
    _apply_action(form, f.get("move", ""), f.get("add", ""), f.get("remove", ""))
    return form


def _apply_action(form: EditionForm, move: str, add: str, remove: str) -> None:
    """The button pressed: move one item up or down, add or remove one (else: save as is)."""
    where, _, raw = move.partition(":")
    if raw.isdigit() and int(raw) in form.order:
        i = form.order.index(int(raw))
        j = i - 1 if where == "up" else i + 1
        if 0 <= j < len(form.order):
            form.order[i], form.order[j] = form.order[j], form.order[i]
    if add.isdigit() and len(add) < 10 and int(add) not in form.order:
        form.order.append(int(add))
    if remove.isdigit() and int(remove) in form.order:
        form.order.remove(int(remove))


def _page(db: Session, month: str, *, form: EditionForm | None = None,
          test: dict[str, str] | None = None, test_errors: dict[str, str] | None = None,
          status: int = 200) -> ResponseReturnValue:
    edition = _edition(db, month)
    ready = [s for s in list_summaries(db, month) if s.status is SummaryStatus.READY]
    context: dict[str, object] = {"month": month, "title": title_of(month), "edition": edition,
                                  "ready": ready, "editor": current_editor()}
    if edition is not None:
        checks, updates = _checks(db, edition)
        content = replace(edition_content(edition), subject="", preheader="")
        everyone = for_variant(content, tuple(i.id for i in content.items)) \
            if content.items else None
        by_id = {s.id: s for s in ready} | {i.summary.id: i.summary for i in edition.items}
        form = form or EditionForm(edition.subject, edition.preheader, edition.intro_md or "",
                                   [i.summary_id for i in edition.items])
        items = [by_id[i] for i in form.order if i in by_id]
        topics = {t.slug for s in items for t in s.topics}
        context |= {
            "form": form, "items": items, "editable": edition.status in EDITABLE,
            "addable": [s for s in ready if s.id not in form.order],
            "default_subject": everyone.subject if everyone else "",
            "default_preheader": everyone.preheader if everyone else "",
            "checks": checks, "updates": updates,
            "test": test or {"to": current_editor().email, "as": "sample", "email": ""},
            "test_errors": test_errors or {},
            "edition_topics": [(slug, name) for slug, name in _topics(db) if slug in topics]}
    return render_template("admin/edition.html", **context), status


@blueprint.route("/editions")
@requires()
def editions(db: Session) -> ResponseReturnValue:
    return render_template("admin/editions.html", rows=edition_months(db), editor=current_editor())


@blueprint.route("/editions/<month>")
@requires()
def edition(db: Session, month: str) -> ResponseReturnValue:
    return _page(db, month_or_404(month))


@blueprint.route("/editions/<month>/assemble", methods=["POST"])
@requires()
def edition_assemble(db: Session, month: str) -> ResponseReturnValue:
    month = month_or_404(month)
    try:
        assembly = assemble_edition(db, month)
    except NewsletterError as err:
        flash(f"Not assembled: {err}.")
        return redirect(url_for("admin.edition", month=month))
    audit.record(db, "edition.assemble", actor=current_editor().email, client=client_address(),
                 detail={"month": month, "items": [i.id for i in assembly.edition.items]})
    flash("Assembled. " + " ".join(assembly.warnings))
    return redirect(url_for("admin.edition", month=month))


@blueprint.route("/editions/<month>", methods=["POST"])
@requires()
def edition_save(db: Session, month: str) -> ResponseReturnValue:
    month = month_or_404(month)
    edition = _edition(db, month)
    if edition is None:
        abort(404)
    if edition.status not in EDITABLE:
        flash(f"Not saved: the edition is {edition.status.value}, so it can no longer change.")
        return redirect(url_for("admin.edition", month=month))
    form = _read_form(edition)
    if not form.errors:
        try:
            edit_edition(db, month, order=form.order, subject=form.subject,
                         preheader=form.preheader, intro_md=form.intro)
        except (ContentError, StateError) as err:
            form.errors["order"] = _sentence(err)
    if form.errors:
        return _page(db, month, form=form, status=400)
    audit.record(db, "edition.edit", actor=current_editor().email, client=client_address(),
                 detail={"month": month, "items": form.order, "subject": form.subject,
                         "preheader": form.preheader})
    flash("Saved.")
    return redirect(url_for("admin.edition", month=month) + "#edition-form")


@blueprint.route("/editions/<month>/test", methods=["POST"])
@requires()
def edition_test_send(db: Session, month: str) -> ResponseReturnValue:
    month = month_or_404(month)
    if _edition(db, month) is None:
        abort(404)
    editor = current_editor()
    f = request.form
    test = {"to": f.get("to", "")[:320].strip(), "as": "subscriber" if f.get("as") == "subscriber"
            else "sample", "email": f.get("subscriber", "")[:320].strip()}
    chosen = frozenset(t[:100] for t in f.getlist("topic")[:50]) or None
    errors: dict[str, str] = {}
    try:
        to = normalise_email(test["to"])
    except InvalidAddress as err:
        errors["to"] = f"That address cannot be used: {err}."
    reader = Reader(chosen)
    if test["as"] == "subscriber":
        try:
            reader = subscriber_reader(db, test["email"])
        except ContentError as err:
            errors["subscriber"] = _sentence(err)
    if not errors:
        verdict = test_limits().hit(editor.email)
        if not verdict.allowed:
            errors["to"] = (f"Too many test sends; wait {max(1, round(verdict.retry_after / 60))}"
                            " minutes.")
    if errors:
        return _page(db, month, test=test, test_errors=errors, status=400)
    try:
        key = send_test_copy(newsletter(), month, to, reader.topics, reader.language)
    except NewsletterError as err:
        return _page(db, month, test=test, test_errors={"to": "Not sent: " + _sentence(err)}, status=400)
    audit.record(db, "edition.test_send", actor=editor.email, client=client_address(),
                 detail={"month": month, "to": to, "variant": key,
                         "as": test["email"] if test["as"] == "subscriber" else "sample"})
    flash(f"Test sent to {to}.")
    return redirect(url_for("admin.edition", month=month) + "#test-send")


@dataclass
class Asked:
    """Who the preview is for, as the GET form put it."""

    mode: str
    topics: frozenset[str] | None
    email: str
    width: str
    errors: dict[str, str] = field(default_factory=dict)

    def query(self, **changes: str) -> dict[str, object]:
        values: dict[str, object] = {"as": self.mode, "topic": sorted(self.topics or ()),
                                     "email": self.email, "width": self.width}
        return values | changes


def _asked(known: set[str]) -> Asked:
    a = request.args
    topics = frozenset(t for t in a.getlist("topic")[:50] if t in known) or None
    width = a.get("width", "desktop") if a.get("width") in WIDTHS else "desktop"
    return Asked("subscriber" if a.get("as") == "subscriber" else "topics", topics,
                 a.get("email", "")[:320].strip(), width)


def _reader(db: Session, asked: Asked) -> Reader | None:
    if asked.mode == "topics":
        return Reader(asked.topics)
    if not asked.email:
        asked.errors["email"] = "Type a subscriber's email address."
        return None
    try:
        return subscriber_reader(db, asked.email)
    except ContentError as err:
        asked.errors["email"] = _sentence(err)
        return None


def _kept(name: str, key: object, make: Callable[[], T]) -> T:
    """A per-process memo (of at most CHECKS_KEPT answers) for what is slow to make again."""
    cache: dict[object, Any] = current_app.extensions.setdefault(f"console_{name}", {})
    if key not in cache:
        if len(cache) >= CHECKS_KEPT:
            cache.clear()
        cache[key] = make()
    return cast(T, cache[key])


def _composer(content: EditionContent) -> Composer:
    """One Composer per edition content, so each variant is rendered once, not per preview."""
    return _kept("composers", content, lambda: Composer(newsletter(), content))


def _audience_version(db: Session) -> tuple[object, ...]:
    """Cheap to read (two index lookups): a new subscriber or suppression counts afresh at once;
    a change of status, pause, language or topics within AUDIENCE_SECONDS."""
    return (db.scalar(select(func.max(Subscriber.id))),
            db.scalar(select(func.count()).select_from(Suppression)),
            int(time.time() // AUDIENCE_SECONDS))


def _content_or_404(db: Session, month: str) -> EditionContent:
    edition = _edition(db, month_or_404(month))
    if edition is None:
        abort(404)
    return edition_content(edition)


def _who_gets_what(db: Session, content: EditionContent) -> tuple[list[dict[str, object]], int]:
    """The planner's count per variant, kept until the edition or the audience changes."""
    counts = _kept("variant_counts", (content, _audience_version(db)),
                   lambda: count_variants(db, content))
    headlines = {item.id: item.headline for item in content.items}
    rows = [{"language": variant_language(key), "count": n,
             "headlines": [headlines[i] for i in parse_variant_key(key) if i in headlines]}
            for key, n in sorted(counts.by_variant.items(), key=lambda kv: (-kv[1], kv[0]))]
    return rows, counts.no_match


@blueprint.route("/editions/<month>/preview")
@requires()
def edition_preview(db: Session, month: str) -> ResponseReturnValue:
    content = _content_or_404(db, month)
    topics = _topics(db)
    asked = _asked({slug for slug, _ in topics})
    reader = _reader(db, asked)
    message = preview_message(newsletter(), content, None, reader=reader,
                              composer=_composer(content)) \
        if reader is not None and content.items else None
    variant = variant_for(content, reader.topics) if reader is not None else ()
    language = normalise_language(reader.language if reader else "") or DEFAULT_LANGUAGE
    shown = for_variant(content, variant, language) if message is not None else None
    text = message.get_body(("plain",)) if message is not None else None
    rows, nothing = _who_gets_what(db, content)
    return render_template(
        "admin/edition_preview.html", month=content.month, title=title_of(content.month),
        asked=asked, topics=topics, message=message, shown=shown, editor=current_editor(),
        text=text.get_content().replace("\r\n", "\n") if text is not None else "",
        widths=WIDTHS, rows=rows, nothing=nothing), 400 if asked.errors else 200


@blueprint.route("/editions/<month>/preview.html")
@requires()
def edition_preview_html(db: Session, month: str) -> ResponseReturnValue:
    content = _content_or_404(db, month)
    asked = _asked({slug for slug, _ in _topics(db)})
    reader = _reader(db, asked)
    message = preview_message(newsletter(), content, None, reader=reader,
                              composer=_composer(content)) \
        if reader is not None and content.items else None
    html = message.get_body(("html",)) if message is not None else None
    if html is None:
        abort(404)
    response = make_response(html.get_content())
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = FRAME_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
