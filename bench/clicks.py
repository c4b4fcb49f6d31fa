"""Click tracking's costs: the per-variant link rewrite, and `/r/` requests per second.

Rewrite: `ClickLinks.rewrite` on each variant of the 2026-10 example edition (all three summaries,
and one), first (links read from the Markdown) and later (cached), against rendering that variant
(`Renderer.render_variant`, Jinja2 + premailer), which it follows once per variant. Redirects: the
app under waitress on 127.0.0.1, keep-alive clients in threads, against the same requests to a
no-op route (a constant 302 to the same URL) registered on the same app, interleaved in one
run, each after a warm-up; `/r/` measured with tracking off (verify and redirect), with every
request a new client (verify, two upserts), and with one client repeating (the dedupe key stops
it).

    /tmp/venv/bin/python bench/clicks.py [--seconds 3] [--clients 4] [--runs 4] [--database-url URL]
"""

from __future__ import annotations

import dataclasses
import http.client
import itertools
import logging
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import waitress  # noqa: E402
from common import say, table  # noqa: E402
from flask import Flask, redirect  # noqa: E402

from newsletter.clicks import click_figures  # noqa: E402
from newsletter.content.assemble import for_variant  # noqa: E402
from newsletter.context import Newsletter  # noqa: E402
from newsletter.domain import EditionContent  # noqa: E402
from newsletter.mail.clicks import ClickLinks, ClickTarget, summary_links  # noqa: E402
from newsletter.mail.compose import make_renderer  # noqa: E402
from newsletter.mail.render import RenderedVariant  # noqa: E402
from newsletter.tokens import TokenSigner  # noqa: E402
from newsletter.web import create_app  # noqa: E402

NOOP = "/bench-noop"
"""Answers what /r/ answers (302 to the same URL) and does nothing else: the framework's cost."""


def per_call_us(fn: Callable[[], object], calls: int, repeats: int = 5) -> float:
    means = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        means.append((time.perf_counter_ns() - started) / calls / 1000)
    return statistics.median(means)


def rewrite_costs(nl: Newsletter, renders: int) -> list[tuple[str, float, float, float, int]]:
    """(variant, render µs, rewrite µs cold, rewrite µs warm, links): cold is the first variant
    holding these summaries (their links read from the Markdown), warm every later one."""
    edition = common.edition(nl)
    renderer = make_renderer(nl)
    clicks = ClickLinks(TokenSigner(nl.config.secret_keys), nl.config.base_url)
    ids = tuple(item.id for item in edition.items)
    rows = []
    for label, variant in (("all three summaries", ids), ("one summary", ids[:1])):
        sub = for_variant(edition, variant)
        rendered = renderer.render_variant(sub, variant)
        render_us = per_call_us(lambda s=sub, v=variant: renderer.render_variant(s, v), renders, 3)

        def cold(s: EditionContent = sub, v: tuple[int, ...] = variant,
                 r: RenderedVariant = rendered) -> object:
            summary_links.cache_clear()
            return clicks.rewrite(s, v, r)

        cold_us = per_call_us(cold, renders * 5, 3)
        warm_us = per_call_us(lambda s=sub, v=variant, r=rendered: clicks.rewrite(s, v, r),
                              renders * 10, 3)
        rows.append((label, render_us, cold_us, warm_us, len(clicks.replacements(sub, variant))))
    return rows


def serve(app: Flask) -> tuple[object, int, threading.Thread]:
    server = waitress.create_server(app, host=common.LOOPBACK, port=0, threads=8,
                                    connection_limit=200)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return server, server.effective_port, thread  # type: ignore[attr-defined]


def load(port: int, path: str, *, seconds: float, clients: int, agents: Callable[[], str]
         ) -> tuple[float, int]:
    """Requests/s over `seconds` from `clients` keep-alive connections; (rate, non-2xx/3xx)."""
    stop = time.perf_counter() + seconds
    done = [0] * clients
    bad = [0] * clients

    def client(n: int) -> None:
        connection = http.client.HTTPConnection(common.LOOPBACK, port, timeout=10)
        while time.perf_counter() < stop:
            connection.request("GET", path, headers={"User-Agent": agents()})
            response = connection.getresponse()
            response.read()
            done[n] += 1
            bad[n] += response.status >= 400
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - started), sum(bad)


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], 0)
    p.add_argument("--seconds", type=float, default=3.0, help="seconds per HTTP measurement")
    p.add_argument("--clients", type=int, default=4, help="keep-alive client threads")
    p.add_argument("--runs", type=int, default=4, help="interleaved runs per route (median)")
    p.add_argument("--renders", type=int, default=20, help="renders per rewrite measurement")
    p.add_argument("--database-url", help="count into this store instead of a temp SQLite file")
    args = p.parse_args()
    say(f"[bold]clicks[/bold] · {common.machine()}")
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "queue depth" lines, not errors
    overrides: dict[str, object] = {"click_tracking": 1}
    with common.BenchStore(0, args.seed, overrides=overrides) as store:
        nl = store.nl
        if args.database_url:
            nl = Newsletter.open(common.make_config(args.database_url, click_tracking=1))
            nl.init()
            common.load_examples(nl)
        rewrites = rewrite_costs(nl, args.renders)
        target = ClickTarget(common.MONTH, "0" * 32, "https://doi.org/10.1037/pst0000175")
        token = ClickLinks(TokenSigner(nl.config.secret_keys), nl.config.base_url).token(target)
        samples: dict[str, list[tuple[float, int]]] = {}
        serial = itertools.count()
        cases = (("no-op route (baseline)", 1, NOOP, lambda: "bench"),
                 ("/r/ tracking off", 0, f"/r/{token}", lambda: "bench"),
                 ("/r/ counted, new client each", 1, f"/r/{token}",
                  lambda: f"bench {next(serial)}"),
                 ("/r/ repeat of one client", 1, f"/r/{token}", lambda: "bench"))
        for run in range(args.runs):  # interleaved and rotated: drift and position hit all alike
            for label, tracking, path, agents in cases[run % 4:] + cases[:run % 4]:
                app_nl = nl if tracking else dataclasses.replace(
                    nl, config=nl.config.with_overrides(click_tracking=0))
                app = create_app(app_nl, testing=True)
                app.add_url_rule(NOOP, "bench_noop", lambda: redirect(target.url, code=302))
                server, port, thread = serve(app)
                try:
                    load(port, path, seconds=0.5, clients=args.clients, agents=agents)  # warm-up
                    samples.setdefault(label, []).append(load(
                        port, path, seconds=args.seconds, clients=args.clients, agents=agents))
                finally:
                    time.sleep(0.2)  # let waitress finish the last answers before closing
                    server.close()  # type: ignore[attr-defined]
                    thread.join(5)
        rates = {label: (statistics.median(r for r, _ in runs), sum(b for _, b in runs))
                 for label, runs in samples.items()}
        counted = click_figures(nl, common.MONTH)["total"]
        if args.database_url:
            nl.close()

    table("Per variant: the link rewrite after the render it follows", [
        "variant", "links", "render µs", "rewrite µs, first", "later", "first / render"], [
        (label, links, f"{render:,.0f}", f"{cold:,.0f}", f"{warm:,.0f}", f"{cold / render:.1%}")
        for label, render, cold, warm, links in rewrites])
    baseline = rates["no-op route (baseline)"][0]
    table(f"Requests/s, {args.clients} keep-alive clients, median of {args.runs} × "
          f"{args.seconds:g} s, waitress", [
        "route", "req/s", "vs no-op", "errors"], [
        (label, f"{rate:,.0f}", f"{rate / baseline:.0%}", bad)
        for label, (rate, bad) in rates.items()])
    say(f"clicks counted: {counted:,} (the 'new client each' runs, plus the one repeating client "
        "once per minute)")
    common.write_json(args.json, {
        "rewrite": [{"variant": label, "links": links, "render_us": render,
                     "rewrite_first_us": cold, "rewrite_later_us": warm}
                    for label, render, cold, warm, links in rewrites],
        "requests_per_second": {label: rate for label, (rate, _) in rates.items()},
        "counted": counted})
    return 1 if any(bad for _, bad in rates.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
