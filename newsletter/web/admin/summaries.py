"""The month's summaries: the list, the form (the file's front matter as fields, checked by the
file loader itself), DOI autofill from Crossref, the live preview (the email's own summary
block), autosaved drafts, revisions and their restore, and the retraction guard's notices.

Every core action is a plain form post; htmx only adds the live preview, the autosave and the
in-place autofill. docs/console.md ("Summaries") describes the page.
"""

from __future__ import annotations

import difflib
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from newsletter.content import autosave
from newsletter.content.form import (
    FormCheck,
    FormValues,
    check_form,
    citation_of,
    read_form,
    values_of,
    values_of_citation,
)
from newsletter.content.history_models import EditorialUpdate, SummaryRevision
from newsletter.content.models import Summary, SummaryStatus, summary_topics
from newsletter.content.restore import restore_revision
from newsletter.content.revisions import draft_from_fields, list_revisions, summary_draft
from newsletter.content.store import upsert_summary
from newsletter.content.summary_file import SummaryDraft, format_summary
from newsletter.content.updates import acknowledge, check_updates, client_of
from newsletter.crossref import BLOCKING_KINDS, LookupFailure
from newsletter.db import utcnow
from newsletter.db.models import ResearchType, Topic
from newsletter.db.paging import page_count
from newsletter.domain import Named, SummaryItem
from newsletter.editors import audit
from newsletter.errors import ContentError, ContentErrors
from newsletter.i18n import DEFAULT_LANGUAGE
from newsletter.mail.compose import branding_for
from newsletter.mail.render import Renderer

from .auth import client_address, current_editor, newsletter, requires
from .common import page_number
from .views import blueprint

PER_PAGE = 50
MAX_BODY_BYTES = 640 * 1024
"""A summary form may carry two 50 000-character Markdown fields (the app's default is 16 KB)."""
FILLED = "Filled from Crossref: check the title's casing and the authors before saving."
NO_CROSSREF = ("Crossref is not asked here (NEWSLETTER_CROSSREF_URL is empty): fill the "
               "citation by hand.")
_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")
_FORM_ENDPOINTS = frozenset({"admin.new_summary", "admin.summary", "admin.summary_lookup",
                             "admin.summary_preview", "admin.summary_autosave"})


@blueprint.url_value_preprocessor
def _larger_summary_forms(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Runs before the CSRF check reads the form: room for a long summary on its own routes."""
    if endpoint in _FORM_ENDPOINTS:
        request.max_content_length = MAX_BODY_BYTES
        request.max_form_memory_size = MAX_BODY_BYTES


@dataclass(frozen=True)
class Taxonomy:
    topics: list[Named]
    research_types: list[Named]

    @classmethod
    def load(cls, db: Session) -> Taxonomy:
        def named(model: Any) -> list[Named]:
            return [Named(slug, name) for slug, name in
                    db.execute(select(model.slug, model.name).order_by(model.position, model.id))]
        return cls(named(Topic), named(ResearchType))

    def check(self, values: FormValues) -> FormCheck:
        return check_form(values, topics=[t.slug for t in self.topics],
                          research_types=[r.slug for r in self.research_types])


def _page(template: str, status: int = 200, **values: Any) -> ResponseReturnValue:
    return render_template(template, editor=current_editor(), **values), status


def _summary_or_404(db: Session, summary_id: int) -> Summary:
    summary = db.get(Summary, summary_id)
    if summary is None:
        abort(404)
    return summary


def _posted() -> FormValues:
    return read_form(lambda name: request.form.get(name, ""), request.form.getlist("topics"))


def _draft_key() -> str:
    key = request.values.get("draft_key", "")
    return key if _KEY.fullmatch(key) else secrets.token_urlsafe(18)


# The list ---------------------------------------------------------------------------------

@blueprint.route("/summaries")
@requires()
def summaries(db: Session) -> ResponseReturnValue:
    """Newest month first, 50 a page; topic and notice counts in one grouped query each."""
    page = page_number()
    total = db.scalar(select(func.count()).select_from(Summary)) or 0
    pages = page_count(total, PER_PAGE)
    page = min(page, pages)
    topics = (select(summary_topics.c.summary_id, func.count().label("n"))
              .group_by(summary_topics.c.summary_id).subquery())
    blocking = and_(EditorialUpdate.kind.in_(BLOCKING_KINDS),
                    EditorialUpdate.acknowledged_at.is_(None))
    notices = (select(EditorialUpdate.summary_id, func.count().label("n"),
                      func.sum(case((blocking, 1), else_=0)).label("open"))
               .group_by(EditorialUpdate.summary_id).subquery())
    rows = db.execute(
        select(Summary.id, Summary.month, Summary.headline, Summary.status,
               func.coalesce(topics.c.n, 0), func.coalesce(notices.c.n, 0),
               func.coalesce(notices.c.open, 0))
        .outerjoin(topics, topics.c.summary_id == Summary.id)
        .outerjoin(notices, notices.c.summary_id == Summary.id)
        .order_by(Summary.month.desc(), Summary.id.desc())
        .limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    months: dict[str, list[dict[str, Any]]] = {}
    for sid, month, headline, status, n_topics, n_notices, n_open in rows:
        months.setdefault(month, []).append({
            "id": sid, "headline": headline, "status": status.value, "topics": int(n_topics),
            "notices": int(n_notices), "open": int(n_open or 0)})
    return _page("admin/summaries.html", months=months, page=page, pages=pages, total=total)


# The form ---------------------------------------------------------------------------------

def _renderer() -> Renderer:
    """The email's renderer (no link rewriting), made once per app."""
    found = current_app.extensions.get("summary_preview_renderer")
    if found is None:
        nl = newsletter()
        found = Renderer(branding_for(nl), nl.config.templates_dir or None)
        current_app.extensions["summary_preview_renderer"] = found
    return found


def _preview_item(values: FormValues, checked: FormCheck, taxonomy: Taxonomy) -> SummaryItem:
    """The summary as far as it goes: the checked draft, else the values as typed."""
    draft = checked.draft
    types = {r.slug: r for r in taxonomy.research_types}
    if draft is not None:
        chosen, citation = set(draft.topics), draft.citation
        headline, body, implications = draft.headline, draft.body_md, draft.implications_md
        note, byline, kind, month = draft.note_md, draft.byline, draft.research_type, draft.month
    else:
        typed = citation_of(values)
        citation = replace(typed, year=typed.year if isinstance(typed.year, int) else None)
        chosen = set(values.topics)
        headline, body = values.get("headline"), values.get("body")
        implications, note = values.get("implications"), values.get("note") or None
        byline, kind, month = values.get("byline") or None, values.get("research_type"), \
            values.get("month")
    return SummaryItem(
        id=0, uid="preview", month=month, headline=headline, citation=citation, body_md=body,
        implications_md=implications, note_md=note, byline=byline,
        topics=tuple(t for t in taxonomy.topics if t.slug in chosen),
        research_type=types.get(kind, Named(kind, "")))


def _preview(values: FormValues, checked: FormCheck, taxonomy: Taxonomy) -> Markup:
    """The email's own summary block (email/_macros.html), the editor's text as data only."""
    env = _renderer().env_for(DEFAULT_LANGUAGE)
    block = getattr(env.get_template("email/_macros.html").make_module({}), "summary")  # noqa: B009
    return Markup(block(_preview_item(values, checked, taxonomy)))  # noqa: S704


def _problems(checked: FormCheck) -> list[str]:
    labels = {"doi": "DOI", "book_title": "Edited book", "research_type": "Research type",
              "body": "Summary", "implications": "Practice implications", "id": "File id",
              "url": "URL", "form": "The summary"}
    return [f"{labels.get(name, name.capitalize())}: {message}"
            for name, messages in checked.errors.items() for message in messages]


def _updates(db: Session, summary: Summary) -> list[EditorialUpdate]:
    return list(db.scalars(select(EditorialUpdate).where(EditorialUpdate.summary_id == summary.id)
                           .order_by(EditorialUpdate.id)))


def _form_page(db: Session, summary: Summary | None, values: FormValues, *,
               errors: dict[str, list[str]] | None = None, checked: FormCheck | None = None,
               taxonomy: Taxonomy | None = None, lookup: str = "", lookup_hint: str = "",
               draft_key: str = "", restored: bool = False, code: int = 200) -> ResponseReturnValue:
    taxonomy = taxonomy or Taxonomy.load(db)
    checked = checked or taxonomy.check(values)
    offer = None
    if summary is not None:
        saved = autosave.find_autosave(db, current_editor().id, autosave.key_for(summary.id))
        if saved is not None and saved.saved_at > summary.updated_at and not restored:
            offer = {"at": _local(saved.saved_at),
                     "url": url_for("admin.summary", summary_id=summary.id, restore="autosave")}
    elif not restored:
        saved = autosave.latest_new_draft(db, current_editor().id)
        if saved is not None:
            offer = {"at": _local(saved.saved_at), "url": url_for(
                "admin.new_summary", draft_key=saved.draft_key.removeprefix(autosave.NEW_PREFIX))}
    revisions = (db.scalar(select(func.count()).select_from(SummaryRevision)
                           .where(SummaryRevision.summary_id == summary.id)) if summary else 0)
    return _page(
        "admin/summary_form.html", code, summary=summary, values=values, errors=errors or {},
        taxonomy=taxonomy, preview=_preview(values, checked, taxonomy),
        preview_problems=_problems(checked), lookup=lookup, lookup_hint=lookup_hint,
        draft_key=draft_key or _draft_key(), offer=offer, revisions=revisions,
        updates=_updates(db, summary) if summary else [], blocking=BLOCKING_KINDS,
        autosaves=summary is None or summary.status is SummaryStatus.DRAFT)


def _local(when: datetime) -> str:
    zone = newsletter().config.timezone
    return f"{when.astimezone(ZoneInfo(zone)):%H:%M} ({zone})"


def _clashes(db: Session, draft: SummaryDraft, summary_id: int | None) -> dict[str, list[str]]:
    """What the store's unique keys would refuse: another summary's month + headline, or id."""
    other = Summary.id != (summary_id or 0)
    errors: dict[str, list[str]] = {}
    same = db.scalar(select(Summary.id).where(Summary.month == draft.month,
                                              Summary.headline == draft.headline, other))
    if same is not None:
        errors["headline"] = [f"summary #{same} of {draft.month} has this headline already: "
                              "edit that one, or change this headline"]
    if draft.id:
        same = db.scalar(select(Summary.id).where(Summary.external_id == draft.id, other))
        if same is not None:
            errors["id"] = [f"summary #{same} has this id already"]
    return errors


def _save(db: Session, summary: Summary | None, values: FormValues,
          draft_key: str) -> ResponseReturnValue:
    taxonomy = Taxonomy.load(db)
    checked = taxonomy.check(values)
    errors = checked.errors or (_clashes(db, checked.draft, summary.id if summary else None)
                                if checked.draft else {})
    if errors or checked.draft is None:
        return _form_page(db, summary, values, errors=errors, checked=checked, taxonomy=taxonomy,
                          draft_key=draft_key, restored=True, code=400)
    editor = current_editor()
    result = upsert_summary(db, replace(checked.draft, source=f"console ({editor.email})"),
                            into=summary, who=editor.email)
    saved = result.summary
    number = db.scalar(select(func.max(SummaryRevision.number))
                       .where(SummaryRevision.summary_id == saved.id))
    autosave.drop_autosave(db, editor.id, autosave.key_for(summary.id if summary else None,
                                                           draft_key))
    autosave.drop_autosave(db, editor.id, autosave.key_for(saved.id))
    audit.record(db, "summary.create" if summary is None else "summary.edit", actor=editor.email,
                 client=client_address(), detail={"summary": saved.id, "month": saved.month,
                                                  "revision": number})
    flash(f"Saved: {saved.headline} ({saved.status.value}, revision {number}).")
    return redirect(url_for("admin.summary", summary_id=saved.id))


def _autofill(values: FormValues) -> tuple[FormValues, str, str, bool]:
    """(values, status, hint, filled): the citation from Crossref, or why not (nothing changed)."""
    client = client_of(newsletter())
    doi = values.get("doi").strip()
    if client is None:
        return values, NO_CROSSREF, "", False
    if not doi:
        return values, "Type a DOI first, then fill from Crossref.", "", False
    work = client.work(doi)
    if isinstance(work, LookupFailure):
        if work.status == 404:
            return values, (f"Crossref has no record of that DOI ({work.doi}): check it, or fill "
                            "the citation by hand."), "", False
        return values, f"Not filled: {work.message}.", "", False
    text = {**values.text, **values_of_citation(replace(work.citation, title=work.suggested_title))}
    text["url"] = values.get("url")
    hint = (f"Crossref gives the title in the publisher's casing (“{work.title_as_given}”); it was "
            "put in sentence case." if work.title_needs_casing else "")
    hint = " ".join([hint, *work.notes]).strip()
    return FormValues(text, values.topics), FILLED, hint, True


def _form_post(db: Session, summary: Summary | None) -> ResponseReturnValue:
    values, key = _posted(), _draft_key()
    if request.form.get("action") == "lookup":
        values, status, hint, _ = _autofill(values)  # before any query: no lock held meanwhile
        return _form_page(db, summary, values, lookup=status, lookup_hint=hint, draft_key=key,
                          restored=True)
    return _save(db, summary, values, key)


@blueprint.route("/summaries/new", methods=["GET", "POST"])
@requires()
def new_summary(db: Session) -> ResponseReturnValue:
    if request.method == "POST":
        return _form_post(db, None)
    key = request.args.get("draft_key", "")
    if _KEY.fullmatch(key):
        saved = autosave.find_autosave(db, current_editor().id, autosave.key_for(None, key))
        if saved is not None:
            flash(f"The autosaved draft of {_local(saved.saved_at)} is back in the form; it is "
                  "not saved until you press Save.")
            return _form_page(db, None, FormValues.from_json(saved.fields), draft_key=key,
                              restored=True)
    month = f"{utcnow():%Y-%m}"
    return _form_page(db, None, FormValues({"month": month, "status": "draft"}),
                      draft_key=secrets.token_urlsafe(18))


@blueprint.route("/summaries/<int:summary_id>", methods=["GET", "POST"])
@requires()
def summary(db: Session, summary_id: int) -> ResponseReturnValue:
    found = _summary_or_404(db, summary_id)
    if request.method == "POST":
        return _form_post(db, found)
    if request.args.get("restore") == "autosave":
        saved = autosave.find_autosave(db, current_editor().id, autosave.key_for(found.id))
        if saved is not None:
            flash(f"The autosaved draft of {_local(saved.saved_at)} is back in the form; it is "
                  "not saved until you press Save.")
            return _form_page(db, found, FormValues.from_json(saved.fields), restored=True)
    return _form_page(db, found, values_of(summary_draft(found)))


@blueprint.route("/summaries/lookup", methods=["POST"])
@requires()
def summary_lookup(db: Session) -> ResponseReturnValue:
    """htmx: the status message, and on success the citation fields swapped in out of band."""
    values, status, hint, filled = _autofill(_posted())
    return _page("admin/summary_lookup.html", values=values, errors={}, lookup=status,
                 lookup_hint=hint, filled=filled)


@blueprint.route("/summaries/preview", methods=["POST"])
@requires()
def summary_preview(db: Session) -> ResponseReturnValue:
    values, taxonomy = _posted(), Taxonomy.load(db)
    checked = taxonomy.check(values)
    return _page("admin/summary_preview.html", preview=_preview(values, checked, taxonomy),
                 preview_problems=_problems(checked))


@blueprint.route("/summaries/autosave", methods=["POST"])
@requires()
def summary_autosave(db: Session) -> ResponseReturnValue:
    """Keep the typed values of a draft (or a new summary) as they are, valid or not."""
    editor, raw = current_editor(), request.form.get("summary_id", "")
    summary_id = int(raw) if raw.isdigit() and len(raw) < 12 else None
    if summary_id is not None:
        found = _summary_or_404(db, summary_id)
        if found.status is not SummaryStatus.DRAFT:
            return "A ready summary is not autosaved: press Save to change it.", 409
        key = autosave.key_for(found.id)
    else:
        key = autosave.key_for(None, _draft_key())
    values = _posted()
    saved = autosave.save_autosave(db, editor.id, key, values.as_json(), summary_id=summary_id)
    return f"Draft saved at {_local(saved.saved_at)}."


# Revisions --------------------------------------------------------------------------------

@blueprint.route("/summaries/<int:summary_id>/revisions")
@requires()
def summary_revisions(db: Session, summary_id: int) -> ResponseReturnValue:
    found = _summary_or_404(db, summary_id)
    rows = list(reversed(list_revisions(db, summary_id)))
    return _page("admin/summary_revisions.html", summary=found, rows=rows)


def _revision_or_404(db: Session, summary_id: int, number: int) -> SummaryRevision:
    found = db.scalar(select(SummaryRevision).where(SummaryRevision.summary_id == summary_id,
                                                    SummaryRevision.number == number))
    if found is None:
        abort(404)
    return found


@blueprint.route("/summaries/<int:summary_id>/revisions/<int:number>")
@requires()
def summary_revision(db: Session, summary_id: int, number: int) -> ResponseReturnValue:
    found = _summary_or_404(db, summary_id)
    revision = _revision_or_404(db, summary_id, number)
    try:
        text = format_summary(draft_from_fields(revision.fields, f"revision {number}"))
    except (KeyError, TypeError, ValueError):
        text = ""
    current = format_summary(summary_draft(found))
    diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(), "current",
                                     f"revision {number}", lineterm="", n=2))
    return _page("admin/summary_revision.html", summary=found, revision=revision, text=text,
                 diff=diff)


@blueprint.route("/summaries/<int:summary_id>/revisions/<int:number>/restore", methods=["POST"])
@requires()
def restore_summary_revision(db: Session, summary_id: int, number: int) -> ResponseReturnValue:
    _summary_or_404(db, summary_id)
    _revision_or_404(db, summary_id, number)
    editor, taxonomy = current_editor(), Taxonomy.load(db)
    try:
        result = restore_revision(db, summary_id, number, who=f"{editor.email} (restored "
                                  f"revision {number})", topics=[t.slug for t in taxonomy.topics],
                                  research_types=[r.slug for r in taxonomy.research_types])
    except ContentErrors as err:
        flash(f"Revision {number} was not restored: " + "; ".join(e.reason for e in err.errors))
        return redirect(url_for("admin.summary_revisions", summary_id=summary_id))
    except ContentError as err:
        flash(f"Revision {number} was not restored: {err.reason}")
        return redirect(url_for("admin.summary_revisions", summary_id=summary_id))
    audit.record(db, "summary.restore", actor=editor.email, client=client_address(),
                 detail={"summary": summary_id, "revision": number})
    flash(f"Saved: revision {number} restored ({result.summary.headline}).")
    return redirect(url_for("admin.summary", summary_id=summary_id))


# Editorial updates (the retraction guard) -----------------------------------------------------

@blueprint.route("/summaries/<int:summary_id>/updates", methods=["POST"])
@requires()
def check_summary_updates(db: Session, summary_id: int) -> ResponseReturnValue:
    found = _summary_or_404(db, summary_id)
    month, editor, client = found.month, current_editor().email, client_address()
    db.commit()  # check_updates writes in its own unit of work
    nl = newsletter()
    check = check_updates(nl, month)
    with nl.session() as session:
        audit.record(session, "summary.updates", actor=editor, client=client,
                     detail={"summary": summary_id, "month": month, "asked": check.asked})
    mine = [row for row in check.rows if row.summary_id == summary_id]
    failures = "; ".join(f.message for f in check.failures)
    flash(f"Crossref could not be asked: {failures}" if failures else
          f"Checked with Crossref: {len(mine)} notice(s) for this summary.")
    return redirect(url_for("admin.summary", summary_id=summary_id) + "#updates")


@blueprint.route("/summaries/<int:summary_id>/updates/acknowledge", methods=["POST"])
@requires()
def acknowledge_summary_update(db: Session, summary_id: int) -> ResponseReturnValue:
    _summary_or_404(db, summary_id)
    notice, editor, client = request.form.get("notice_doi", "")[:300], current_editor().email, \
        client_address()
    db.commit()  # acknowledge writes in its own unit of work
    nl = newsletter()
    try:
        row = acknowledge(nl, summary_id, notice, editor)
    except ContentError as err:
        flash(f"Not acknowledged: {err.reason}")
        return redirect(url_for("admin.summary", summary_id=summary_id) + "#updates")
    with nl.session() as session:
        audit.record(session, "summary.acknowledge", actor=editor, client=client,
                     detail={"summary": summary_id, "notice": row.notice_doi, "type": row.kind})
    flash(f"Acknowledged: {row.label} {row.notice_doi}.")
    return redirect(url_for("admin.summary", summary_id=summary_id) + "#updates")

