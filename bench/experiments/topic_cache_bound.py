"""What-if: bound `TopicNames`' cache of topic lines.

`recipients.TopicNames.describe` caches one string per distinct choice of topics, keyed by the
frozenset, for the whole send. With 36 topics and 1-4 chosen there are 66 711 possible choices,
so on a large, varied audience the cache (frozenset + slugs + line) keeps growing through the send
(~5 000 entries, ~3 MB after 20 000 messages; tens of MB at 1 M). Computing a line costs a few µs.
Here the cache is simply emptied when it reaches 4 096 entries.
"""

from __future__ import annotations

from newsletter.sending import recipients

LIMIT = 4096
_original = recipients.TopicNames.describe


def describe(self, chosen):  # type: ignore[no-untyped-def]
    if len(self._cache) >= LIMIT and chosen not in self._cache:
        self._cache.clear()
    return _original(self, chosen)


def apply() -> None:
    recipients.TopicNames.describe = describe  # type: ignore[method-assign]
