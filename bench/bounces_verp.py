"""What a VERP Return-Path adds per recipient, and what reading one bounce costs.

Per recipient: `Composer.compose` with `bounce_address` set (a tag per delivery: one HMAC and a
base32 encoding), against the same compose without it, interleaved in the same run on the same
store (baseline). Per bounce: `read_report` of the real Postfix DSN, and the tag check alone.

    .venv/bin/python bench/bounces_verp.py [--iterations N]
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

from newsletter.bounces import read_report  # noqa: E402
from newsletter.content.variants import variant_key  # noqa: E402
from newsletter.mail.compose import Composer  # noqa: E402

DSN = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "bounces" / "postfix-dsn-hard-550.eml"
TARGET_SHARE = 0.10
"""The tag may cost at most this share of a compose."""


def per_call_us(fn: Callable[[int], object], iterations: int) -> float:
    started = time.perf_counter_ns()
    for i in range(1, iterations + 1):
        fn(i)
    return (time.perf_counter_ns() - started) / iterations / 1000


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], 100)
    p.add_argument("--iterations", type=int, default=20_000, help="calls per measurement")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median kept)")
    args = p.parse_args()
    n = args.iterations
    say(f"[bold]bounces_verp[/bold] · {common.machine()}")
    date = datetime.now(UTC)
    with common.BenchStore(args.subscribers, args.seed) as store:
        edition = common.edition(store.nl)
        variant = variant_key(tuple(item.id for item in edition.items))
        plain = Composer(store.nl, edition)
        tagged_nl = common.open_store(store.db_path, bounce_address="bounce@pprnet.example")
        try:
            tagged = Composer(tagged_nl, edition, plain.renderer)
            verp = tagged_nl.config.verp
            assert verp is not None
            for composer in (plain, tagged):
                composer.template(variant)

            def compose(composer: Composer) -> Callable[[int], object]:
                return lambda i: composer.compose(
                    delivery_id=i, variant=variant, uid=f"{i:032x}",
                    email=f"r{i}@research.example", name="Lee Chen", topics=None, date=date)

            assert tagged.compose(delivery_id=7, variant=variant, uid="u", email="a@b.example",
                                  name="", topics=None, date=date).envelope_from.startswith("bounce+")
            rounds: dict[str, list[float]] = {"without": [], "with": [], "tag": []}
            for _ in range(args.rounds):
                rounds["without"].append(per_call_us(compose(plain), n))
                rounds["with"].append(per_call_us(compose(tagged), n))
                rounds["tag"].append(per_call_us(verp.return_path, n))
            data = DSN.read_bytes()
            address = verp.return_path(4242)
            read_us = statistics.median(per_call_us(lambda i: read_report(data, now=date), 500)
                                        for _ in range(3))
            check_us = statistics.median(per_call_us(lambda i: verp.delivery_of(address), n)
                                         for _ in range(3))
        finally:
            tagged_nl.close()
    without, with_tag, tag = (statistics.median(rounds[k]) for k in ("without", "with", "tag"))
    added = with_tag - without
    table(f"Per recipient (µs, median of {args.rounds} interleaved rounds × {n:,} calls)",
          ["step", "µs"], [
              ("Composer.compose, bounce_address unset (baseline)", f"{without:.1f}"),
              ("Composer.compose, VERP Return-Path", f"{with_tag:.1f}"),
              ("  difference", f"{added:+.1f}"),
              ("Verp.return_path alone", f"{tag:.1f}")])
    table("Per bounce read (µs)", ["step", "µs"], [
        ("read_report, the real Postfix DSN (2.7 KB)", f"{read_us:.0f}"),
        ("Verp.delivery_of (tag check)", f"{check_us:.1f}")])
    share = tag / without
    say(f"the tag is [bold]{share:.1%}[/bold] of a compose (target ≤ {TARGET_SHARE:.0%})")
    common.write_json(args.json, {
        "benchmark": "bounces_verp", "compose_us": without, "compose_verp_us": with_tag,
        "tag_us": tag, "tag_share": share, "read_report_us": read_us, "tag_check_us": check_us})
    return 0 if share <= TARGET_SHARE else 1


if __name__ == "__main__":
    raise SystemExit(main())
