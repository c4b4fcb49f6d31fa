"""Per-recipient values: signed links and the few strings a message shows about its reader."""

from __future__ import annotations

from collections.abc import Mapping

from newsletter.tokens import Purpose, TokenSigner

from ..config import Config
from ..i18n import DEFAULT_LANGUAGE, normalise_language, translations
from .personalise import parse_sender


class LinkMaker:
    """Builds a recipient's signed links; the only per-recipient cryptography is two HMACs."""

    def __init__(self, signer: TokenSigner, base_url: str, unsubscribe_mailto: str) -> None:
        self.signer = signer
        self.base = base_url.rstrip("/")
        self.mailto = unsubscribe_mailto

    @classmethod
    def for_config(cls, config: Config) -> LinkMaker:
        return cls(TokenSigner(config.secret_keys), config.base_url,
                   config.unsubscribe_mailto or default_unsubscribe_mailto(config.from_))

    def unsubscribe_url(self, uid: str) -> str:
        return f"{self.base}/u/{self.signer.sign(Purpose.UNSUBSCRIBE, uid)}"

    def preferences_url(self, uid: str) -> str:
        return f"{self.base}/preferences/{self.signer.sign(Purpose.PREFERENCES, uid)}"

    def list_unsubscribe(self, unsubscribe_url: str) -> tuple[str, ...]:
        """The List-Unsubscribe targets (RFC 2369): the one-click URL first, then mail. A token
        is URL-safe base64 and dots, which `quote` leaves alone: only the space needs escaping."""
        if not self.mailto:
            return (unsubscribe_url,)
        token = unsubscribe_url.rpartition("/")[2]
        return (unsubscribe_url, f"mailto:{self.mailto}?subject=unsubscribe%20{token}")


class TopicNames:
    """`Alliance and Therapeutic Relationship, Empathy`, cached per distinct choice of topics."""

    def __init__(self, names_by_slug: Mapping[str, str]) -> None:
        self.names_by_slug = dict(names_by_slug)
        self._cache: dict[tuple[frozenset[str] | None, str], str] = {}

    CACHE_LIMIT = 4096

    def describe(self, chosen: frozenset[str] | None, language: str = DEFAULT_LANGUAGE) -> str:
        """Cached, but bounded: a varied audience has tens of thousands of distinct choices.
        Topic names are the taxonomy's own; only "all topics" and "no topics" are translated."""
        key = (chosen, language)
        if key not in self._cache:
            if len(self._cache) >= self.CACHE_LIMIT:
                self._cache.clear()
            _ = translations(normalise_language(language) or DEFAULT_LANGUAGE, "email").gettext
            if chosen is None:
                text = _("all topics")
            else:
                order = list(self.names_by_slug)
                slugs = sorted(chosen & set(order), key=order.index)
                text = ", ".join(self.names_by_slug[s] for s in slugs) or _("no topics")
            self._cache[key] = text
        return self._cache[key]


def default_unsubscribe_mailto(sender: str) -> str:
    """`unsubscribe@<the From domain>` when none is configured."""
    domain = parse_sender(sender).domain
    return f"unsubscribe@{domain}" if domain else ""
