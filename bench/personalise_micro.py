"""Per-recipient cost, step by step, against rendering one variant: why we render per variant.

Per recipient (µs per message): the two signed links (HMAC tokens), the topics line, the `To`
value, the Date header, the template fill (QP-encoding the values, joining ~30 KB of bytes), and
the whole `Composer.compose`. For context, the CPU the SMTP hand-over spends on the same bytes
inside smtplib (dot-stuffing regex, address parsing). Baseline: one render + CSS inline of a
variant (`Renderer.render_variant`: Jinja2 then premailer) and the per-variant template compile.

    /tmp/venv/bin/python bench/personalise_micro.py [--iterations N]
"""

from __future__ import annotations

import smtplib
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import say, table  # noqa: E402

from newsletter.content.assemble import for_variant  # noqa: E402
from newsletter.content.variants import variant_key  # noqa: E402
from newsletter.mail.compose import Composer  # noqa: E402
from newsletter.mail.personalise import compile_template, envelope_address, format_recipient  # noqa: E402
from newsletter.mail.render import check_rendered  # noqa: E402


def per_call_us(fn: Callable[[int], object], iterations: int, repeats: int = 5) -> float:
    """Median over `repeats` of the mean µs per call; `fn(i)` gets a distinct i each call."""
    means = []
    for r in range(repeats):
        base = r * iterations
        started = time.perf_counter_ns()
        for i in range(base, base + iterations):
            fn(i)
        means.append((time.perf_counter_ns() - started) / iterations / 1000)
    return statistics.median(means)


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], 100)
    p.add_argument("--iterations", type=int, default=20_000,
                   help="calls per measurement for per-recipient steps (default 20 000)")
    p.add_argument("--renders", type=int, default=30,
                   help="renders per variant measurement (default 30)")
    args = p.parse_args()
    n = args.iterations
    say(f"[bold]personalise_micro[/bold] · {common.machine()}")

    with common.BenchStore(args.subscribers, args.seed) as store:
        edition = common.edition(store.nl)
        composer = Composer(store.nl, edition)
        all_ids = tuple(item.id for item in edition.items)
        variant = variant_key(all_ids)
        template = composer.template(variant)  # warm: render once, as the send loop does
        links = composer.links
        uids = [f"{i:032x}" for i in range(n * 5)]
        ascii_names = ["Dr. Amara Okafor", "Lee Chen", "Sean O'Brien"]
        other_names = ["Jean-François Côté", "Tomás Müller", "Łukasz Wójcik"]
        date = datetime.now(UTC)
        date_text = format_datetime(date)
        chosen = frozenset({"empathy", "therapist-factors"})
        unsub = links.unsubscribe_url(uids[0])
        values = {"name": "Lee Chen", "email": "lee.chen@research.example",
                  "unsubscribe_url": unsub, "preferences_url": links.preferences_url(uids[0]),
                  "topics": composer.topic_names.describe(chosen)}
        to_ascii = format_recipient("Lee Chen", "lee.chen@research.example")

        steps: list[tuple[str, float]] = [
            ("unsubscribe link (signed token)", per_call_us(
                lambda i: links.unsubscribe_url(uids[i]), n)),
            ("preferences link (signed token)", per_call_us(
                lambda i: links.preferences_url(uids[i]), n)),
            ("List-Unsubscribe targets", per_call_us(lambda i: links.list_unsubscribe(unsub), n)),
            ("topics line (cached per choice)", per_call_us(
                lambda i: composer.topic_names.describe(chosen), n)),
            ("To: ASCII name", per_call_us(
                lambda i: format_recipient(ascii_names[i % 3], f"r{i}@research.example"), n)),
            ("To: non-ASCII name (RFC 2047)", per_call_us(
                lambda i: format_recipient(other_names[i % 3], f"r{i}@research.example"), n)),
            ("envelope address", per_call_us(
                lambda i: envelope_address(f"r{i}@research.example"), n)),
            ("Date header (format_datetime)", per_call_us(lambda i: format_datetime(date), n)),
            ("template fill (~30 KB of bytes)", per_call_us(
                lambda i: template.fill(to=to_ascii, date=date_text, message_id=f"<{i}@x>",
                                        unsubscribe=(unsub,), values=values), n)),
        ]
        whole = per_call_us(lambda i: composer.compose(
            delivery_id=i, variant=variant, uid=uids[i], email=f"r{i}@research.example",
            name=(ascii_names + other_names)[i % 6], topics=chosen if i % 2 else None,
            date=date), n)
        message = composer.compose(delivery_id=1, variant=variant, uid=uids[0],
                                   email="lee.chen@research.example", name="Lee Chen",
                                   topics=None, date=date).data

        # what smtplib then does with the same bytes, per message (CPU, no socket)
        smtp_steps = [
            ("smtplib dot-stuffing regex (_quote_periods)", per_call_us(
                lambda i: smtplib._quote_periods(message), max(n // 10, 200))),
            ("  same with bytes.replace", per_call_us(
                lambda i: message.replace(b"\n.", b"\n.."), max(n // 10, 200))),
            ("smtplib quoteaddr × 2 (MAIL FROM, RCPT TO)", per_call_us(
                lambda i: (smtplib.quoteaddr("digest@pprnet.example"),
                           smtplib.quoteaddr(f"r{i}@research.example")), n)),
        ]

        # the baseline: one variant, rendered and inlined, then compiled into a template
        sub = for_variant(edition, all_ids)
        renderer = composer.renderer
        render_us = per_call_us(lambda i: renderer.render_variant(sub, all_ids), args.renders, 3)
        rendered = renderer.render_variant(sub, all_ids)
        check_us = per_call_us(lambda i: check_rendered(rendered), args.renders, 3)
        c = store.nl.config
        compile_us = per_call_us(lambda i: compile_template(
            rendered, variant=variant, sender=c.from_, list_id=c.effective_list_id),
            args.renders, 3)

    table(f"Per recipient (µs per message, median of 5 × {n:,} calls)", ["step", "µs"],
          [(name, f"{us:.1f}") for name, us in steps]
          + [("[bold]Composer.compose, whole[/bold]", f"[bold]{whole:.1f}[/bold]")]
          + [(f"[dim]{name}[/dim]", f"[dim]{us:.1f}[/dim]") for name, us in smtp_steps])
    per_variant = render_us + check_us + compile_us
    table(f"Per variant (once per send), all three summaries, {len(message):,} B message",
          ["step", "µs"], [
              ("render_variant: Jinja2 + premailer inline", f"{render_us:,.0f}"),
              ("check_rendered", f"{check_us:,.0f}"),
              ("compile_template (fold headers, QP-encode bodies)", f"{compile_us:,.0f}"),
              ("[bold]total per variant[/bold]", f"[bold]{per_variant:,.0f}[/bold]")])
    say(f"one render+inline = [bold]{render_us / whole:,.0f}×[/bold] one personalised message "
        f"({render_us / 1000:.1f} ms vs {whole:.1f} µs); with compile: "
        f"{per_variant / whole:,.0f}×. Signing is {(steps[0][1] + steps[1][1]) / whole:.0%} "
        f"of a compose.")
    common.write_json(args.json, {
        "benchmark": "personalise_micro", "steps_us": dict(steps), "compose_us": whole,
        "smtp_us": dict(smtp_steps), "render_us": render_us, "check_us": check_us,
        "compile_us": compile_us, "ratio_render_to_compose": render_us / whole,
        "message_bytes": len(message)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
