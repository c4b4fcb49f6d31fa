"""Webhook absorption: events per second one process records from a local load generator.

The app under waitress on 127.0.0.1 (one process, 4 threads); two poster threads send SendGrid
Event Webhook batches of `--per-request` events (default 1 000), signed with a real P-256 key as
SendGrid signs them. Baseline, same run: the same requests (same bodies and headers) to a no-op
route on the same app that only reads the body. Every batch is posted twice, once by each poster
at the same time, so half the events are duplicates; at the end every effect is counted: each
event stored once, each hard bounce and complaint suppressed once, nothing lost.

    /tmp/venv/bin/python bench/webhooks.py [--requests 20] [--per-request 1000] [--runs 3]
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import os
import statistics
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import waitress  # noqa: E402
from common import say, table  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from flask import Flask, request  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from newsletter.content.models import Edition  # noqa: E402
from newsletter.context import Newsletter  # noqa: E402
from newsletter.feedback.models import FeedbackEventRow  # noqa: E402
from newsletter.sending.models import Delivery, DeliveryStatus  # noqa: E402
from newsletter.web import create_app  # noqa: E402
from newsletter.web.security import csrf_exempt  # noqa: E402
from newsletter.webhooks.base import MAX_BODY_BYTES  # noqa: E402
from subscribers.models import Subscriber, SubscriberStatus, Suppression  # noqa: E402

NOOP = "/bench-noop"
TARGET = 5000.0
MIX = (("delivered", 70), ("bounce", 10), ("blocked", 10), ("spamreport", 5), ("unsubscribe", 5))
EXPECTED = {"delivered": SubscriberStatus.ACTIVE, "bounce": SubscriberStatus.BOUNCED,
            "blocked": SubscriberStatus.ACTIVE, "spamreport": SubscriberStatus.COMPLAINED,
            "unsubscribe": SubscriberStatus.UNSUBSCRIBED}


def sent_deliveries(nl: Newsletter) -> list[tuple[int, str, int, str]]:
    """(subscriber id, email, delivery id, provider message id) for every subscriber: the
    example edition as sent through SendGrid."""
    now = datetime.now(UTC)
    with nl.session() as session:
        edition_id = session.scalar(select(Edition.id).where(Edition.month == common.MONTH))
        people = session.execute(select(Subscriber.id, Subscriber.email).order_by(Subscriber.id)).all()
    rows = [{"edition_id": edition_id, "subscriber_id": sid, "variant": "1,2,3",
             "status": DeliveryStatus.SENT, "attempts": 1, "provider_message_id": f"sg{sid:08d}",
             "sent_at": now, "created_at": now, "updated_at": now} for sid, _ in people]
    with nl.engine.begin() as conn:
        conn.execute(insert(Delivery.__table__), rows)
    with nl.session() as session:
        ids = dict(session.execute(select(Delivery.subscriber_id, Delivery.id)).all())
    return [(sid, email, ids[sid], f"sg{sid:08d}") for sid, email in people]


Batch = tuple[list[dict[str, object]], list[str]]


def batches(deliveries: list[tuple[int, str, int, str]], per_request: int) -> list[Batch]:
    """Requests of `per_request` events, the mix above, one event per subscriber."""
    kinds = [name for name, share in MIX for _ in range(share)]
    made, now = [], int(time.time())
    for start in range(0, len(deliveries), per_request):
        events, names = [], []
        for i, (sid, email, delivery_id, message_id) in enumerate(deliveries[start:start + per_request]):
            name = kinds[(start + i) % len(kinds)]
            event = {"email": email, "timestamp": now - 60, "sg_event_id": f"bench-{sid}",
                     "sg_message_id": f"{message_id}.filterdrecv-1", "delivery_id": str(delivery_id),
                     "event": "bounce" if name == "blocked" else name}
            if name in ("bounce", "blocked"):
                event.update(type=name, status="5.1.1" if name == "bounce" else "4.7.1",
                             reason="550 5.1.1 no such user" if name == "bounce" else "421 later")
            events.append(event)
            names.append(name)
        made.append((events, names))
    return made


def signed(key: ec.EllipticCurvePrivateKey, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp}


def serve(app: Flask) -> tuple[waitress.server.BaseWSGIServer, threading.Thread]:
    server = waitress.create_server(app, host=common.LOOPBACK, port=0, threads=4,
                                    max_request_body_size=2 * 1024 * 1024)

    def run() -> None:
        with contextlib.suppress(OSError, ValueError):  # the loop's sockets closing under it
            server.run()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return server, thread


Requests = list[tuple[bytes, dict[str, str]]]


def post_all(port: int, path: str, requests: Requests) -> tuple[float, float, list[int]]:
    """Two posters, each sending every request once, at the same time: (wall seconds, CPU
    seconds of this whole process, server and posters, statuses)."""
    statuses: list[int] = []
    lock, start = threading.Lock(), threading.Barrier(2)

    def poster(order: list[tuple[bytes, dict[str, str]]]) -> None:
        connection = http.client.HTTPConnection(common.LOOPBACK, port, timeout=120)
        start.wait()
        for body, headers in order:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            with lock:
                statuses.append(response.status)
        connection.close()

    threads = [threading.Thread(target=poster, args=(order,))
               for order in (requests, list(reversed(requests)))]
    began, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, time.process_time() - cpu, statuses


def check_effects(nl: Newsletter, expected: Counter[str]) -> list[str]:
    """What is wrong with the store after the run (empty: every effect exactly once)."""
    problems = []
    with nl.session() as session:
        stored = session.scalar(select(func.count()).select_from(FeedbackEventRow))
        suppressed = session.scalar(select(func.count()).select_from(Suppression))
        statuses = Counter(s.value for s in session.scalars(select(Subscriber.status)))
    kept = sum(expected.values())
    if stored != kept:
        problems.append(f"{stored} events stored, {kept} expected")
    if suppressed != expected["bounce"] + expected["spamreport"]:
        problems.append(f"{suppressed} suppressions, {expected['bounce'] + expected['spamreport']} expected")
    want: Counter[str] = Counter()
    for name, count in expected.items():
        want[EXPECTED[name].value] += count
    if statuses != want:
        problems.append(f"statuses {dict(statuses)}, expected {dict(want)}")
    return problems


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], default_subscribers=0)
    p.add_argument("--requests", type=int, default=20, help="distinct requests per run")
    p.add_argument("--per-request", type=int, default=1000, help="events per request")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    # The alerts the mix raises, and waitress's complaints about sockets closed at shutdown.
    logging.getLogger("newsletter").setLevel(logging.ERROR)
    logging.getLogger("waitress").setLevel(logging.CRITICAL)
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    events_per_run = args.requests * args.per_request
    say(f"[bold]Webhook absorption[/bold]: {common.machine()}")
    say(f"{args.requests} requests × {args.per_request} events, each posted by both of two "
        f"concurrent posters; SQLite store; {args.runs} runs")
    rows: list[tuple[str, ...]] = []
    ours_rates: list[float] = []
    noop_rates: list[float] = []
    cpu_rates: list[float] = []
    failures: list[str] = []
    for run in range(args.runs):
        with common.BenchStore(events_per_run, overrides={"webhook_sendgrid_public_key": public}) as bench:
            deliveries = sent_deliveries(bench.nl)
            made = batches(deliveries, args.per_request)
            requests = [(json.dumps(events).encode(), signed(key, json.dumps(events).encode()))
                        for events, _ in made]
            expected = Counter(name for _, names in made for name in names)
            app = create_app(bench.nl)
            app.add_url_rule(NOOP, "bench_noop", csrf_exempt(_noop), methods=["POST"])
            server, thread = serve(app)
            try:
                noop_seconds, noop_cpu, noop_statuses = post_all(server.effective_port, NOOP, requests)
                ours_seconds, ours_cpu, statuses = post_all(server.effective_port,
                                                            "/webhooks/sendgrid", requests)
            finally:
                server.close()
                thread.join(5)
            posted = 2 * events_per_run
            if set(statuses) != {200} or set(noop_statuses) != {200}:
                failures.append(f"run {run + 1}: answers {Counter(statuses)} / "
                                f"no-op {Counter(noop_statuses)}")
            failures += [f"run {run + 1}: {p}" for p in check_effects(bench.nl, expected)]
            ours, noop = posted / ours_seconds, posted / noop_seconds
            ours_rates.append(ours)
            noop_rates.append(noop)
            cpu_rates.append(posted / ours_cpu)
            rows.append((f"run {run + 1}", f"{ours:,.0f}", f"{noop:,.0f}", f"{ours / noop:.1%}",
                         f"{ours_seconds:.2f} s", f"{posted / ours_cpu:,.0f}",
                         f"{posted / noop_cpu:,.0f}"))
    table("events absorbed per second (posted events, duplicates included)",
          ("", "/webhooks/sendgrid", "no-op route", "ratio", "wall", "ours per CPU-s",
           "no-op per CPU-s"), rows)
    median = statistics.median(ours_rates)
    say(f"median {median:,.0f} events/s against a no-op baseline of "
        f"{statistics.median(noop_rates):,.0f} (target ≥ {TARGET:,.0f}); "
        f"{statistics.median(cpu_rates):,.0f} events per CPU-second; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    common.write_json(args.json, {"events_per_second": ours_rates, "noop_events_per_second": noop_rates,
                                  "events_per_cpu_second": cpu_rates, "failures": failures})
    for failure in failures:
        say(f"[red]{failure}[/red]")
    if failures:
        say("[red]effects wrong[/red]")
        return 1
    if median < TARGET:
        say("[red]target missed (every effect exactly once)[/red]")
        return 1
    say("[green]target met; every effect exactly once[/green]")
    return 0


def _noop() -> tuple[str, int]:
    request.max_content_length = MAX_BODY_BYTES
    request.get_data()
    return "", 200


if __name__ == "__main__":
    sys.exit(main())
