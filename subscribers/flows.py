"""What a subscriber (or an administrator) can do, as library calls: no web framework in here.

    signup → confirmation email → confirmation page → confirm (a POST) → welcome email
    preferences (name, topics, pause, resume) · unsubscribe (idempotent) · resubscribe from a link
    erase · suppress / unsuppress · purge unconfirmed · describe (everything held about a person)

Every call that starts from a link takes the signed token itself and verifies it here, so no
caller can act on a subscriber without one. Signup never tells whether an address is known: the
caller gets nothing back, and the person gets either a confirmation or a "manage your
preferences" email (or nothing, if the address is suppressed). Everything that depends on the
address (reading and writing its record, the email) runs in one `defer`red job, so a web answer
takes as long for a suppressed address as for a new one.

A confirmation link activates only a signup still waiting for it: the link is bound to the
record's state when it was sent (status, last unsubscribe, last confirmation), so one sent before
the person confirmed and then left cannot bring them back. Signing up again sends a new link.

Pausing sets `paused_at` and leaves the topics alone, so resuming brings them back as they were;
saving preferences while paused keeps the pause. Coming back after leaving (signing up again,
subscribing again from a link) starts unpaused. Before pauses had their own column, pausing emptied
the topic choice; such people still match no edition until they choose topics.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.content.models import Edition, EditionStatus
from newsletter.context import Newsletter
from newsletter.db import utcnow
from newsletter.db.models import Topic
from newsletter.domain import Named
from newsletter.errors import ConfigError, ContentError, ContentErrors, NewsletterError
from newsletter.i18n import DEFAULT_LANGUAGE, LANGUAGES, normalise_language
from newsletter.mail.compose import branding_for
from newsletter.mail.links import TopicNames
from newsletter.text import line_problem
from newsletter.tokens import InvalidToken, Purpose, TokenSigner

from . import store
from .addresses import InvalidAddress, address_hash, normalise_email
from .mailer import Mail, Mailer, MailKind
from .models import ConsentMethod, Subscriber, SubscriberStatus

__all__ = ["MAX_NAME_LENGTH", "Flows", "StaleConfirmation", "SubscriberView", "Unsubscribed",
           "Leaving", "check_language", "unsubscribe_subscriber", "validate_name"]

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 100
_URL_LIKE = re.compile(r"://|www\.", re.IGNORECASE)
# RFC 2047 `=?charset?q?…?=`: mail programs decode it, =0D=0A included, into what we refused above.
_ENCODED_WORD = re.compile(r"=\?.*\?=", re.DOTALL)

Job = Callable[[], None]


class StaleConfirmation(InvalidToken):
    """A genuine confirmation link sent before the subscription ended: it must not bring the
    person back (they left since); signing up again sends a link that works."""


class Unsubscribed(StrEnum):
    NOW = "now"
    ALREADY = "already"
    UNKNOWN = "unknown"
    """The link is genuine but nobody is held for it any more (erased or purged)."""


@dataclass(frozen=True)
class SubscriberView:
    """What the pages show about the person a link was made for."""

    uid: str
    email: str
    name: str
    status: SubscriberStatus
    topics: frozenset[str] | None
    suppressed: bool
    paused_since: datetime | None
    language: str = DEFAULT_LANGUAGE
    """The language of their emails and of the pages their links open."""

    @property
    def paused(self) -> bool:
        return self.paused_since is not None

    @property
    def has_no_topics(self) -> bool:
        """Left by the old pause, which emptied the choice: nothing matches until they choose."""
        return self.topics is not None and not self.topics

    @property
    def can_resubscribe(self) -> bool:
        return not self.suppressed and self.status in (SubscriberStatus.UNSUBSCRIBED,
                                                        SubscriberStatus.COMPLAINED)


def validate_name(raw: str) -> str:
    """The name as it will appear in the To header and the greeting: one line, no links, nothing
    a mail program would decode into more. The one check for every way in (web, CSV, CLI)."""
    found = line_problem(raw, name=True)
    if found is not None:
        raise ContentError(f"the name cannot contain line breaks or control characters ({found})",
                           field="name")
    name = " ".join(raw.split())
    if len(name) > MAX_NAME_LENGTH:
        raise ContentError(f"the name is longer than {MAX_NAME_LENGTH} characters", field="name")
    if _URL_LIKE.search(name):
        raise ContentError("the name cannot contain a web address", field="name")
    if _ENCODED_WORD.search(name):
        raise ContentError("the name cannot contain an encoded word (=?…?=), which mail programs "
                           "decode", field="name")
    return name


class Flows:
    """The subscriber flows over one opened Newsletter.

    `defer(job)` decides when address-dependent work runs (recording a signup, sending an email):
    by default at once; the web app passes a function that runs it out of band, so the answer's
    timing does not depend on the address. Email failures are logged, never raised: they must not
    change what the caller answers.
    """

    def __init__(self, nl: Newsletter, *, mailer: Mailer | None = None,
                 defer: Callable[[Job], None] | None = None) -> None:
        self.nl, self.config, self._mailer = nl, nl.config, mailer
        self.defer = defer or (lambda job: job())
        self.confirm_expiry = timedelta(days=nl.config.confirm_expiry_days)

    @cached_property
    def signer(self) -> TokenSigner:
        """Made on first use: administration (erase, suppress…) works without the secret key."""
        return TokenSigner(self.config.secret_keys)

    @cached_property
    def mailer(self) -> Mailer:
        return self._mailer or Mailer(self.config, branding_for(self.nl))

    # -- reading ---------------------------------------------------------------------------

    def topics(self) -> list[Named]:
        """Every topic in the blog's order: what the forms offer."""
        with self.nl.session() as session:
            return [Named(slug, name) for slug, name in session.execute(
                select(Topic.slug, Topic.name).order_by(Topic.position))]

    def view(self, purpose: Purpose, token: str) -> SubscriberView | None:
        """The person a preferences or unsubscribe link was made for; None if the link is
        genuine but nobody is held for it any more (erased); InvalidToken if it is not genuine."""
        uid = self.signer.verify(purpose, token)
        with self.nl.session() as session:
            subscriber = store.find_by_uid(session, uid)
            return None if subscriber is None else _view(session, subscriber)

    def sign(self, purpose: Purpose, uid: str) -> str:
        return self.signer.sign(purpose, uid)

    # -- signup and confirmation -------------------------------------------------------------

    def validate(self, email: str, name: str,
                 topics: frozenset[str] | None) -> tuple[str, str, frozenset[str] | None]:
        """(normalised address, clean name, topics) or ContentErrors naming every bad field."""
        problems: list[ContentError] = []
        address = ""
        try:
            address = normalise_email(email)
        except InvalidAddress as err:
            problems.append(ContentError(str(err), field="email"))
        name = self._check_choice(name, topics, problems)
        if problems:
            raise ContentErrors(problems)
        return address, name, topics

    def signup(self, email: str, name: str, topics: frozenset[str] | None, client_ip: str,
               source: str = "", language: str = DEFAULT_LANGUAGE) -> None:
        """Ask for a subscription. Invalid input raises ContentErrors; otherwise the outcome is
        the same for every address and only the email (if any) differs.

        Only the input is checked here; the rest is one deferred job whatever the address, since
        returning early for a suppressed one (or writing a row for a new one) would be timeable.
        """
        self.signup_validated(*self.validate(email, name, topics), client_ip, source,
                              language=check_language(language))

    def signup_validated(self, address: str, name: str, topics: frozenset[str] | None,
                         client_ip: str, source: str = "", *,
                         language: str = DEFAULT_LANGUAGE) -> None:
        """`signup` for input exactly as `validate` returned it (the web validates first, to
        show the form's errors, and must not query twice for some addresses only); `language`
        as `check_language` returned it."""
        source = source or self.config.base_url.rstrip("/") + "/subscribe"

        def job() -> None:
            record = (address, name, topics, client_ip, source, language)
            try:
                mail = self._record_signup(*record)
            except IntegrityError:  # the same new address, twice at once: the row exists now
                mail = self._record_signup(*record)
            if mail is not None:
                self._deliver(mail)  # already out of band: deferring again would need the app
        self.defer(job)

    def _record_signup(self, address: str, name: str, topics: frozenset[str] | None,
                       client_ip: str, source: str, language: str) -> Mail | None:
        with self.nl.session() as session:
            key = address_hash(address)
            if store.is_suppressed(session, key):
                log.info("signup for a suppressed address: nothing sent")
                return None
            subscriber = session.scalar(select(Subscriber).where(Subscriber.email_hash == key))
            if subscriber is not None and subscriber.status is SubscriberStatus.ACTIVE:
                return self._mail(session, MailKind.MANAGE, subscriber)
            now = utcnow()
            if subscriber is None:
                subscriber = Subscriber(email=address, email_hash=key, name=name,
                                        status=SubscriberStatus.UNCONFIRMED,
                                        consent_method=ConsentMethod.WEB_FORM)
                session.add(subscriber)
            if subscriber.status is SubscriberStatus.UNCONFIRMED:
                subscriber.consent_at, subscriber.consent_source = now, source[:500]
                subscriber.consent_ip_hash = self.ip_hash(client_ip)
            subscriber.name = name or subscriber.name
            subscriber.language = language
            subscriber.paused_at = None  # asking to subscribe is asking to receive
            subscriber.updated_at = now  # restarts the unconfirmed record's expiry
            store.set_topics(session, subscriber, topics)
            session.flush()
            expiry_days = self.confirm_expiry.days
            confirm_url = self._url("confirm", self.sign(
                Purpose.CONFIRM, f"{subscriber.uid}.{_confirmation_state(subscriber)}"))
            return self._mail(session, MailKind.CONFIRM, subscriber,
                              confirm_url=confirm_url, expiry_days=expiry_days)

    def confirmation(self, token: str) -> SubscriberView:
        """Who a confirmation link is for, changing nothing: what the page before the button
        shows (link scanners open links). The same errors as `confirm`."""
        with self.nl.session() as session:
            return _view(session, self._confirmable(session, token))

    def confirm(self, token: str, client_ip: str) -> tuple[SubscriberView, bool]:
        """Activate the subscription a confirmation link was made for; (who, newly confirmed).

        Someone already active (or suppressed) is shown as they are, with no second welcome.
        InvalidToken for a bad or expired link, or one whose record was purged since;
        StaleConfirmation for one sent before the subscription ended.
        """
        with self.nl.session() as session:
            subscriber = self._confirmable(session, token)
            if subscriber.status is SubscriberStatus.ACTIVE or _suppressed(session, subscriber):
                return _view(session, subscriber), False
            now = utcnow()
            subscriber.status, subscriber.unsubscribed_at = SubscriberStatus.ACTIVE, None
            subscriber.confirmed_at = subscriber.consent_at = now
            subscriber.consent_method = ConsentMethod.WEB_FORM
            subscriber.consent_source = (self.config.base_url.rstrip("/") + "/subscribe; "
                                         "confirmed by the emailed link")
            subscriber.consent_ip_hash = self.ip_hash(client_ip)
            view = _view(session, subscriber)
            mail = self._mail(session, MailKind.WELCOME, subscriber,
                              archive_url=_latest_archive_url(session, self.config.base_url))
        self._send(mail)
        return view, True

    def _confirmable(self, session: Session, token: str) -> Subscriber:
        """The subscriber a confirmation link is for, if it may still activate them (or they
        are active already). A link carries `uid.state`; one from before states were signed
        carries the bare uid and is honoured only while the signup is unconfirmed."""
        payload = self.signer.verify(Purpose.CONFIRM, token,
                                     max_age_seconds=int(self.confirm_expiry.total_seconds()))
        uid, _, state = payload.partition(".")
        subscriber = self._by_uid(session, uid)
        if subscriber.status in (SubscriberStatus.ACTIVE, SubscriberStatus.UNCONFIRMED):
            return subscriber
        if not state or not hmac.compare_digest(state, _confirmation_state(subscriber)):
            raise StaleConfirmation("this confirmation link was sent before the subscription "
                                    "ended, so it cannot start it again")
        return subscriber

    # -- from a preferences or unsubscribe link ----------------------------------------------

    def update_preferences(self, token: str, name: str, topics: frozenset[str] | None,
                           language: str | None = None) -> SubscriberView:
        """New name, topics (None: all) and language (None: unchanged); a pause stays until
        resumed, so changing topics during a break does not end it. ContentErrors for bad input,
        InvalidToken for a bad link."""
        uid = self.signer.verify(Purpose.PREFERENCES, token)
        problems: list[ContentError] = []
        name = self._check_choice(name, topics, problems)
        try:
            language = None if language is None else check_language(language)
        except ContentError as err:
            problems.append(err)
        if problems:
            raise ContentErrors(problems)
        with self.nl.session() as session:
            subscriber = self._by_uid(session, uid)
            subscriber.name = name
            subscriber.language = language or subscriber.language
            store.set_topics(session, subscriber, topics)
            session.flush()
            return _view(session, subscriber)

    def pause(self, token: str) -> SubscriberView:
        """Receive nothing until resumed; the topics are kept. Pausing again keeps the first date."""
        return self._set_paused(token, paused=True)

    def resume(self, token: str) -> SubscriberView:
        """Receive again, with the topics exactly as they were when paused (or saved since)."""
        return self._set_paused(token, paused=False)

    def _set_paused(self, token: str, *, paused: bool) -> SubscriberView:
        uid = self.signer.verify(Purpose.PREFERENCES, token)
        with self.nl.session() as session:
            subscriber = self._by_uid(session, uid)
            if not paused:
                subscriber.paused_at = None
            elif subscriber.paused_at is None:
                subscriber.paused_at = utcnow()
            session.flush()
            return _view(session, subscriber)

    def resubscribe(self, token: str, client_ip: str) -> SubscriberView:
        """Back on the list from a preferences link (it reached their mailbox, which is consent
        enough); not for a suppressed address, which only an administrator can release."""
        uid = self.signer.verify(Purpose.PREFERENCES, token)
        with self.nl.session() as session:
            subscriber = self._by_uid(session, uid)
            view = _view(session, subscriber)
            if not view.can_resubscribe:
                return view
            now = utcnow()
            subscriber.status, subscriber.unsubscribed_at = SubscriberStatus.ACTIVE, None
            subscriber.paused_at = None
            subscriber.consent_method, subscriber.consent_at = ConsentMethod.WEB_FORM, now
            subscriber.consent_source = (self.config.base_url.rstrip("/")
                                         + "/preferences; resubscribed from an emailed link")
            subscriber.consent_ip_hash = self.ip_hash(client_ip)
            session.flush()
            return _view(session, subscriber)

    def unsubscribe(self, token: str) -> Unsubscribed:
        """Stop all mail to the person the link was made for; safe to repeat. Takes effect for
        every send that has not reached them yet: the send loop re-checks status per batch."""
        uid = self.signer.verify(Purpose.UNSUBSCRIBE, token)
        with self.nl.session() as session:
            subscriber = store.find_by_uid(session, uid)
            if subscriber is None:
                return Unsubscribed.UNKNOWN
            return unsubscribe_subscriber(subscriber)

    # -- administration ----------------------------------------------------------------------

    def purge_unconfirmed(self, older_than: timedelta | None = None) -> int:
        """Delete signups never confirmed within `older_than` (default: the link's lifetime)."""
        cutoff = utcnow() - (older_than if older_than is not None else self.confirm_expiry)
        with self.nl.session() as session:
            return store.purge_unconfirmed(session, cutoff)

    def suppress(self, email: str, reason: str = "manual", detail: str = "") -> None:
        with self.nl.session() as session:
            store.suppress(session, parse_address(email), reason[:50] or "manual", detail)

    def unsuppress(self, email: str) -> str | None:
        """The reason the address was suppressed, or None if it was not."""
        with self.nl.session() as session:
            return store.unsuppress(session, parse_address(email))

    # -- helpers -----------------------------------------------------------------------------

    def ip_hash(self, client_ip: str) -> str | None:
        """A keyed hash of the client address: enough to match it again, not to recover it
        (a plain hash of an IPv4 address can be reversed by trying all four billion)."""
        if not client_ip:
            return None
        key = self.config.secret_keys[0].encode("utf-8")
        return hmac.new(key, client_ip.encode("utf-8"), hashlib.sha256).hexdigest()

    def _check_choice(self, name: str, topics: frozenset[str] | None,
                      problems: list[ContentError]) -> str:
        """The clean name; what is wrong with the name or the topics goes into `problems`."""
        try:
            name = validate_name(name)
        except ContentError as err:
            problems.append(err)
        try:
            self._check_topics(topics)
        except ContentError as err:
            problems.append(err)
        return name

    def _check_topics(self, topics: frozenset[str] | None) -> None:
        if topics is None:
            return
        if not topics:
            raise ContentError("choose at least one topic, or all topics", field="topics")
        known = {t.slug for t in self.topics()}
        unknown = sorted(topics - known)
        if unknown:
            raise ContentError(f"unknown topic(s): {', '.join(unknown)[:200]}", field="topics")

    def _by_uid(self, session: Session, uid: str) -> Subscriber:
        subscriber = store.find_by_uid(session, uid)
        if subscriber is None:
            raise InvalidToken("this link is no longer valid")
        return subscriber

    def _url(self, route: str, token: str) -> str:
        return f"{self.config.base_url.rstrip('/')}/{route}/{token}"

    def _mail(self, session: Session, kind: MailKind, subscriber: Subscriber, **context: Any) -> Mail:
        names = TopicNames(dict(session.execute(select(Topic.slug, Topic.name)
                                                .order_by(Topic.position)).all()))
        language = normalise_language(subscriber.language) or DEFAULT_LANGUAGE
        return Mail(kind, subscriber.uid, subscriber.email, subscriber.name,
                    names.describe(subscriber.topic_slugs, language), context, language=language)

    def _send(self, mail: Mail) -> None:
        self.defer(lambda: self._deliver(mail))

    def _deliver(self, mail: Mail) -> None:
        """Send now; a failure is logged, never raised (the person can simply ask again)."""
        try:
            self.mailer.send(mail)
        except (ConfigError, NewsletterError):
            log.exception("the %s email could not be sent", mail.kind.value)


class Leaving(Protocol):
    """What an unsubscribe changes: a Subscriber, or a row a set-based caller holds for one."""

    status: SubscriberStatus
    unsubscribed_at: datetime | None


def unsubscribe_subscriber(subscriber: Leaving) -> Unsubscribed:
    """The one unsubscribe: the one-click link and a provider's unsubscribe event both end here.
    Only an active or unconfirmed person leaves; any other status is already further along."""
    if subscriber.status not in (SubscriberStatus.ACTIVE, SubscriberStatus.UNCONFIRMED):
        return Unsubscribed.ALREADY
    subscriber.status, subscriber.unsubscribed_at = SubscriberStatus.UNSUBSCRIBED, utcnow()
    return Unsubscribed.NOW


def check_language(raw: str) -> str:
    """A known language for what a form or caller gave ("fr", "fr-CA"); ContentError if none."""
    language = normalise_language(raw[:20])
    if language is None:
        raise ContentError(f"unknown language {raw[:20]!r}: use one of {', '.join(LANGUAGES)}",
                           field="language")
    return language


def parse_address(email: str) -> str:
    """The normal form of an address a person typed; ContentError naming the field if unusable."""
    try:
        return normalise_email(email)
    except InvalidAddress as err:
        raise ContentError(str(err), field="email") from err


def _confirmation_state(subscriber: Subscriber) -> str:
    """What a confirmation link is bound to. Confirming, unsubscribing, bouncing and coming back
    all change it, so a link sent before any of them stops working; signing up again while
    waiting does not, so every link of one pending signup works."""
    state = "|".join((subscriber.status.value, _moment(subscriber.unsubscribed_at),
                      _moment(subscriber.confirmed_at)))
    return hashlib.sha256(state.encode("utf-8")).hexdigest()[:16]


def _moment(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def _suppressed(session: Session, subscriber: Subscriber) -> bool:
    return store.is_suppressed(session, subscriber.email_hash)


def _view(session: Session, subscriber: Subscriber) -> SubscriberView:
    return SubscriberView(subscriber.uid, subscriber.email, subscriber.name, subscriber.status,
                          subscriber.topic_slugs, _suppressed(session, subscriber),
                          subscriber.paused_at,
                          normalise_language(subscriber.language) or DEFAULT_LANGUAGE)


def _latest_archive_url(session: Session, base_url: str) -> str:
    month = session.scalar(select(Edition.month).where(Edition.status == EditionStatus.SENT)
                           .order_by(Edition.month.desc()).limit(1))
    return f"{base_url.rstrip('/')}/archive/{month}" if month else ""
