"""What the French chrome costs: a French variant's render against the English one, and one
recipient's compose in each, measured in the same run on the 2026-10 example edition.

Render: `Composer.template(key)` with a fresh Composer each time (Jinja2 + gettext + premailer +
compile), `"1,2,3"` (baseline) against `"fr:1,2,3"`; each language's environment is warmed once
first, as a send warms it with its first variant. Compose: `Composer.compose` for one recipient
of each key (the per-recipient work), the English one the baseline.

    /tmp/venv/bin/python bench/email_languages.py [--renders 10] [--composes 5000]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import say, table  # noqa: E402

from newsletter.mail.compose import Composer, make_renderer  # noqa: E402


def median_us(fn: Callable[[], object], calls: int, repeats: int = 5) -> float:
    means = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        means.append((time.perf_counter_ns() - started) / calls / 1000)
    return statistics.median(means)


def main() -> int:
    args = common.parser(__doc__ or "", 0)
    args.add_argument("--renders", type=int, default=10)
    args.add_argument("--composes", type=int, default=5000)
    options = args.parse_args()
    say(common.machine())
    with common.BenchStore(0) as store:
        nl, content = store.nl, common.edition(store.nl)
        ids = ",".join(str(item.id) for item in content.items)
        renderer = make_renderer(nl)
        keys = {"en": ids, "fr": f"fr:{ids}"}
        for key in keys.values():
            Composer(nl, content, renderer).template(key)
        render = {language: median_us(lambda k=key: Composer(nl, content, renderer).template(k),
                                      options.renders, 3) for language, key in keys.items()}
        composer = Composer(nl, content, renderer)
        now = datetime.now(UTC)
        compose = {language: median_us(lambda k=key: composer.compose(
            delivery_id=1, variant=k, uid="bench-uid", email="lea.tremblay@example.org",
            name="Léa Tremblay", topics=None, date=now), options.composes)
            for language, key in keys.items()}
    table("French chrome against English (baseline), same run",
          ["step", "English (baseline)", "French", "ratio"],
          [["render one variant (3 summaries)", f"{render['en'] / 1000:.1f} ms",
            f"{render['fr'] / 1000:.1f} ms", f"{render['fr'] / render['en']:.2f}"],
           ["compose one recipient", f"{compose['en']:.1f} µs", f"{compose['fr']:.1f} µs",
            f"{compose['fr'] / compose['en']:.2f}"]])
    common.write_json(options.json, {"render_us": render, "compose_us": compose})
    ok = render["fr"] < 1.5 * render["en"] and compose["fr"] < 1.5 * compose["en"]
    say("target: French within 1.5x of English for both: " + ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
