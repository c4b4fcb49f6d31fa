"""The naive way (Jinja2 + premailer for every recipient) against ours (once per variant).

Both build the finished message bytes for the same sample of recipients, in ledger order, with the
same code: `Composer.compose`. Naive: the composer's template cache is emptied before every
recipient, so each message pays `Renderer.render_variant` (Jinja2, then premailer CSS inlining),
`check_rendered` and `compile_template`. Ours: the cache is kept, so each variant renders once.
No SMTP, no ledger: this isolates the rendering decision. Figures for a full audience are
extrapolated from the sample and labelled so.

    /tmp/venv/bin/python bench/naive_render.py [--sample 2000] [--extrapolate-to 100000]
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import say, table  # noqa: E402

from newsletter.content.variants import variant_for, variant_key  # noqa: E402
from newsletter.mail.compose import Composer  # noqa: E402
from subscribers.store import iter_audience  # noqa: E402


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], 3_000)
    p.add_argument("--sample", type=int, default=2_000,
                   help="recipients (with at least one matching summary) to build (default 2 000)")
    p.add_argument("--extrapolate-to", type=int, default=100_000,
                   help="audience size for the extrapolated line (default 100 000)")
    args = p.parse_args()
    say(f"[bold]naive_render[/bold]: sample of {args.sample:,} recipients · {common.machine()}")

    with common.BenchStore(max(args.subscribers, args.sample * 2), args.seed) as store:
        edition = common.edition(store.nl)
        recipients = []
        with store.nl.sessions() as session:
            for chunk in iter_audience(session):
                for r in chunk:
                    key = variant_key(variant_for(edition, r.topics))
                    if key:
                        recipients.append((r, key))
                if len(recipients) >= args.sample:
                    break
        recipients = recipients[:args.sample]
        variants = len({key for _, key in recipients})
        date = datetime.now(UTC)

        def build(composer: Composer, cached: bool) -> int:
            size = 0
            for i, (r, key) in enumerate(recipients):
                if not cached:
                    composer._templates.clear()  # the naive way: nothing survives a recipient
                size += len(composer.compose(delivery_id=i, variant=key, uid=r.uid,
                                             email=r.email, name=r.name, topics=r.topics,
                                             date=date).data)
            return size

        # warm both paths once (Jinja2 compiles its templates on first use)
        Composer(store.nl, edition).template(recipients[0][1])
        ours_composer = Composer(store.nl, edition)
        with common.timed() as ours_render:  # the per-variant part, paid once per send
            for key in dict.fromkeys(key for _, key in recipients):
                ours_composer.template(key)
        with common.timed() as ours_compose:  # the per-recipient part
            ours_bytes = build(ours_composer, cached=True)
        ours = common.Timer(ours_render.seconds + ours_compose.seconds)
        naive_composer = Composer(store.nl, edition)
        with common.timed() as naive:
            naive_bytes = build(naive_composer, cached=False)

    n = len(recipients)
    full = args.extrapolate_to
    ours_us, naive_us = ours.seconds / n * 1e6, naive.seconds / n * 1e6
    compose_us = ours_compose.seconds / n * 1e6
    full_ours = ours_render.seconds + compose_us * full / 1e6
    speedup = naive.seconds / ours.seconds
    table(f"Building {n:,} finished messages ({variants} variants among them)",
          ["", "ours: once per variant", "naive: per recipient"], [
              ("wall time", f"{ours.seconds:.2f} s", f"{naive.seconds:.1f} s"),
              ("  of which rendering variants", f"{ours_render.seconds:.2f} s ({variants} renders)",
               f"{naive.seconds:.1f} s ({n:,} renders)"),
              ("per message, all in", f"{ours_us:,.0f} µs", f"{naive_us:,.0f} µs"),
              ("per message, renders excluded", f"{compose_us:,.0f} µs", "-"),
              ("messages/s (one core)", common.fmt_rate(n / ours.seconds),
               common.fmt_rate(n / naive.seconds)),
              ("renders (Jinja2 + premailer)", variants, common.fmt_int(n)),
              ("mean message size", f"{ours_bytes // n:,} B", f"{naive_bytes // n:,} B"),
              (f"EXTRAPOLATED to {full:,} recipients", f"{full_ours:,.1f} s",
               f"{naive_us * full / 1e6 / 60:,.0f} min"),
          ])
    say(f"speed-up of rendering once per variant: [bold]{speedup:,.0f}×[/bold] measured on "
        f"{n:,} recipients; EXTRAPOLATED to {full:,}: "
        f"[bold]{naive_us * full / 1e6 / full_ours:,.0f}×[/bold] (naive: one render per recipient, "
        f"{naive_us:,.0f} µs each; ours: {variants} renders + {compose_us:.0f} µs per message)")
    common.write_json(args.json, {
        "benchmark": "naive_render", "sample": n, "variants": variants,
        "ours_seconds": ours.seconds, "naive_seconds": naive.seconds, "speedup": speedup,
        "ours_us": ours_us, "naive_us": naive_us, "ours_render_seconds": ours_render.seconds,
        "compose_us": compose_us, "extrapolated_to": full, "extrapolated_ours_seconds": full_ours,
        "extrapolated_naive_seconds": naive_us * full / 1e6})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
