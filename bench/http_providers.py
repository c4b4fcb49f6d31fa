"""HTTP providers: msgs/s and requests per message of a full send into local fakes of Postmark,
SendGrid and Mailgun (the documented APIs, as tests/test_transport_http.py implements them).

Baseline, same run: replaying the very requests our send made (same bodies, same headers) with a
bare keep-alive `requests.Session`: the ceiling of the fake server and the loopback HTTP path.
The ratio says how much of that ceiling our plan + compose + ledger work leaves.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import requests  # noqa: E402
from common import say, table  # noqa: E402

from newsletter.context import Newsletter  # noqa: E402
from newsletter.sending.engine import Sender  # noqa: E402
from newsletter.transports import make_transport  # noqa: E402
from tests.test_transport_http import FAKES, FakeMailgun, FakeProvider  # noqa: E402


def replay(server: FakeProvider) -> float:
    """Seconds to send the recorded requests again over one keep-alive session."""
    recorded = list(server.requests)
    keep = ("authorization", "content-type", "x-postmark-server-token", "accept")
    with requests.Session() as session:
        started = time.perf_counter()
        for r in recorded:
            headers = {k: v for k, v in r.headers.items() if k in keep}
            session.post(server.url + r.path, data=r.body, headers=headers, timeout=60)
        return time.perf_counter() - started


def run(name: str, subscribers: int, seed: int) -> list[object]:
    with common.BenchStore(subscribers, seed) as store, FAKES[name]() as server:
        config = store.nl.config.with_overrides(
            transport=name, api_key=server.key, api_base_url=server.url,
            mailgun_domain=FakeMailgun.domain if name == "mailgun" else "")
        nl = Newsletter(config, store.nl.engine, store.nl.sessions)
        transport = make_transport(config)
        started = time.perf_counter()
        try:
            report = Sender(nl, transport).send(common.MONTH)
        finally:
            transport.close()
        ours = time.perf_counter() - started
        calls = len(server.requests)
        baseline = replay(server)
    rate, ceiling = report.sent / ours, report.sent / baseline
    return [name, f"{report.sent:,}", f"{calls:,}", f"{calls / max(report.sent, 1):.4f}",
            f"{rate:,.0f}", f"{ceiling:,.0f}", f"{rate / ceiling:.1%}"]


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], 5_000)
    args = p.parse_args()
    say(f"[bold]http_providers[/bold]: {args.subscribers:,} subscribers · {common.machine()}")
    rows = [run(name, args.subscribers, args.seed) for name in FAKES]
    table("HTTP providers (local fakes of the documented APIs)",
          ["provider", "messages", "requests", "requests/msg", "ours msgs/s",
           "replay msgs/s (baseline)", "ours / baseline"], rows)


if __name__ == "__main__":
    main()
