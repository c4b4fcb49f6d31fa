"""What the retraction guard and revisions add: scheduling's sendability check with Crossref asked
(a loopback server speaking Crossref's JSON, tests/crossref_support.py) against the same check
with asking switched off (`crossref_url` empty: the same checks, the stored notices only), and a
summary save that keeps a revision against the save's own cost without one.

    /tmp/venv/bin/python bench/crossref_check.py [--runs 20]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402
from common import say, table  # noqa: E402
from sqlalchemy import select  # noqa: E402

from newsletter.content.models import Summary  # noqa: E402
from newsletter.content.revisions import record_revision, summary_draft  # noqa: E402
from newsletter.content.store import upsert_summary  # noqa: E402
from newsletter.context import Newsletter  # noqa: E402
from newsletter.schedule.editions import check_sendable  # noqa: E402
from tests.crossref_support import fake_crossref  # noqa: E402


def median_ms(action, runs: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def main() -> int:
    parser = common.parser(__doc__ or "", 0)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, fake_crossref() as crossref:
        nl = common.open_store(Path(folder) / "bench.db", crossref_url=crossref.url)
        nl.init()
        common.load_examples(nl)
        offline = Newsletter(replace(nl.config, crossref_url=""), nl.engine, nl.sessions)
        check_sendable(nl, common.MONTH)  # warm templates and the stored rows
        ours = median_ms(lambda: check_sendable(nl, common.MONTH), args.runs)
        base = median_ms(lambda: check_sendable(offline, common.MONTH), args.runs)
        asked = len([r for r in crossref.requests if r["path"] == "/works"])

        with nl.session() as session:
            summary = session.scalars(select(Summary).order_by(Summary.id)).first()
            assert summary is not None
            draft = summary_draft(summary)
        counter = iter(range(10**9))

        def save() -> None:
            with nl.session() as session:
                upsert_summary(session, replace(draft, body_md=f"{draft.body_md} {next(counter)}"))

        def revision_only() -> None:
            with nl.session() as session:
                stored = session.get(Summary, summary.id)
                assert stored is not None
                record_revision(session, stored, replace(draft, body_md=str(next(counter))),
                                "bench")

        saves = median_ms(save, args.runs)
        revisions = median_ms(revision_only, args.runs)
        nl.close()
    say(common.machine())
    table("Sendability check, 3 summaries with DOIs (7 variants), median of "
          f"{args.runs} (max)", ["", "ms", "max ms"],
          [["ours: Crossref asked (loopback)", f"{ours[0]:.1f}", f"{ours[1]:.1f}"],
           ["baseline: crossref_url empty", f"{base[0]:.1f}", f"{base[1]:.1f}"],
           ["added by asking", f"{ours[0] - base[0]:.1f}", ""]])
    say(f"Crossref requests made: {asked} ({asked // (args.runs + 1)} per check)")
    table("A summary save", ["", "ms"],
          [["upsert_summary incl. revision", f"{saves[0]:.2f}"],
           ["record_revision alone", f"{revisions[0]:.2f}"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
