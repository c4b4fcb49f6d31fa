"""Click counts that respect readers: per (edition, summary, link), never per person.

`mail.clicks` mints the /r/ tokens; this package stores what `/r/` counts (`store`) and reads it
back for the editor (`figures`). The figures are approximate: link scanners in mail systems
follow links too, and a one-minute de-duplication per client only tempers that.
"""

from .figures import APPROXIMATE, click_figures
from .store import (
    DEDUPE_SECONDS,
    client_key,
    count_click,
    prune_expired,
    prune_seen,
    record_click,
)

__all__ = ["APPROXIMATE", "DEDUPE_SECONDS", "click_figures", "client_key", "count_click",
           "prune_expired", "prune_seen", "record_click"]
