"""Shared setup for the benchmarks: a throwaway store, a fast synthetic audience, smtp-sink.

Every benchmark is a plain script (`/tmp/venv/bin/python bench/NAME.py --subscribers N`). This module
puts the repository on `sys.path`, so the checkout need not be installed.

- `BenchStore`: a fresh SQLite store in a temp dir, the three example summaries of 2026-10
  assembled into an edition, N subscribers bulk-inserted with SQLAlchemy Core (seeded RNG).
- `SmtpSink`: Postfix's `smtp-sink` on a free 127.0.0.1 port, counting what it received.
- `smtp_source`: Postfix's `smtp-source` pushing messages into that sink (the reference limit).
- `smtp_transport`: our SMTPTransport, with `connections=N` when the transport supports it.
- timing and peak-RSS helpers, and a small rich-based reporter.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import inspect
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import insert, select  # noqa: E402

from newsletter.catcher import free_port  # noqa: E402
from newsletter.config import Config, load_config  # noqa: E402
from newsletter.content.store import assemble_edition, upsert_summary  # noqa: E402
from newsletter.content.summary_file import read_summary_file  # noqa: E402
from newsletter.context import Newsletter  # noqa: E402
from newsletter.db.models import Topic  # noqa: E402
from newsletter.taxonomy import research_type_slugs, topic_slugs  # noqa: E402
from newsletter.transports.smtp import SMTPSettings, SMTPTransport  # noqa: E402
from subscribers.models import ConsentMethod, Subscriber, SubscriberStatus, subscriber_topics  # noqa: E402

MONTH = "2026-10"
EXAMPLES = REPO / "newsletter" / "content" / "examples"
SECRET = "bench-secret-not-for-production-0123456789abcdef"
SEED = 20261001
LOOPBACK = "127.0.0.1"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"

try:  # rich is a project dependency, but keep the scripts usable without it
    from rich.console import Console
    from rich.table import Table
    console: Any = Console(highlight=False, width=None if sys.stdout.isatty() else 100)
except ImportError:  # pragma: no cover
    Console = Table = None  # type: ignore[assignment,misc]
    console = None


# ---------------------------------------------------------------------------- output

def say(text: str = "") -> None:
    if console is not None:
        console.print(text)
    else:
        print(re.sub(r"\[/?[a-z ]+\]", "", text), flush=True)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    if console is not None:
        t = Table(title=title, title_justify="left")
        for i, column in enumerate(columns):
            t.add_column(column, justify="left" if i == 0 else "right")
        for row in rows:
            t.add_row(*(str(c) for c in row))
        console.print(t)
        return
    print(title)
    for row in [columns, *rows]:
        print("  " + " | ".join(str(c) for c in row))


def machine() -> str:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{os.cpu_count()} CPU ({cpu or 'unknown'}), Python {sys.version.split()[0]}, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


def parser(description: str, default_subscribers: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--subscribers", type=int, default=default_subscribers,
                   help=f"audience size (default {default_subscribers:,})")
    p.add_argument("--seed", type=int, default=SEED, help="RNG seed for the synthetic audience")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    p.add_argument("--experiment", action="append", metavar="NAME",
                   help="apply a what-if patch from bench/experiments/ (repeatable; results are "
                        "then not the package as it stands)")
    return p


def apply_experiments(names: list[str] | None) -> list[str]:
    """Apply bench/experiments/NAME patches in this process; print a warning when any is on."""
    import experiments
    applied = experiments.apply(names)
    if applied:
        say(f"[yellow]EXPERIMENT: patched at run time with {', '.join(applied)}: these figures "
            f"are not the package as it stands[/yellow]")
    return applied


def write_json(path: str | None, figures: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps({"machine": machine(), **figures}, indent=2) + "\n")


# ---------------------------------------------------------------------------- timing & memory

@dataclass
class Timer:
    seconds: float = 0.0


@contextlib.contextmanager
def timed() -> Iterator[Timer]:
    t = Timer()
    started = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - started


def proc_status_kb(key: str, pid: int | str = "self") -> int:
    """A `Vm…` line of /proc/PID/status in kB (VmHWM = peak resident set, VmRSS = current)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (VmHWM), in MiB."""
    return proc_status_kb("VmHWM") / 1024


def rss_mb() -> float:
    return proc_status_kb("VmRSS") / 1024


# ---------------------------------------------------------------------------- the store

FIRST = ("Amara", "Jean-François", "Priya", "Tomás", "Lee", "Sofia", "Ingrid", "Mateus", "Chloé",
         "Kwame", "Hannah", "Yuki", "Olumide", "Zoë", "Björn", "Fatima", "Daniel", "Łukasz",
         "Maria", "Ahmed", "Elena", "Sean", "Aiko", "Noah", "Ana", "Pieter", "Grace", "Ravi")
LAST = ("Okafor", "Côté", "Raman", "Müller", "Chen", "Rossi", "Johansson", "Silva", "Dubois",
        "Mensah", "Schmidt", "Tanaka", "Adeyemi", "Nowak", "García", "Haddad", "Cohen", "Ivanova",
        "O'Brien", "Kim", "de Vries", "Smith", "Nguyen", "Murphy", "Papadopoulos", "Wójcik")
TITLES = ("", "", "", "", "Dr. ", "Prof. ")
DOMAINS = ("gmail.example", "outlook.example", "clinic.example", "uni-research.example",
           "praxis.example", "nhs.example", "psy.example", "counselling.example",
           "hospital.example", "mail.example")


def make_config(database_url: str, **overrides: object) -> Config:
    values: dict[str, object] = {
        "database_url": database_url, "secret_key": SECRET, "transport": "smtp",
        "base_url": "https://digest.pprnet.example", "smtp_host": LOOPBACK, "smtp_port": 25,
        "smtp_security": "none", "smtp_user": "", "smtp_password": "",
        "from": "PPRNet Research Digest <digest@pprnet.example>", "templates_dir": "",
        "list_id": "", "unsubscribe_mailto": "", "reply_to": ""}
    values.update(overrides)
    return load_config(overrides=values, environ={"NEWSLETTER_CONFIG": "/nonexistent.toml"})


def open_store(db_path: Path | str, **overrides: object) -> Newsletter:
    return Newsletter.open(make_config(f"sqlite:///{db_path}", **overrides))


@contextlib.contextmanager
def fresh_store(kind: str, postgres: str | None) -> Iterator[Newsletter]:
    """An initialised, empty store, removed after: a SQLite file in a temp dir ("SQLite"), or a
    new schema in the `postgres` database ("PostgreSQL")."""
    from sqlalchemy import create_engine, text

    if kind == "SQLite":
        folder = Path(tempfile.mkdtemp(prefix="nl-bench-"))
        nl = open_store(folder / "newsletter.db")
        try:
            nl.init()
            yield nl
        finally:
            nl.close()
            shutil.rmtree(folder, ignore_errors=True)
        return
    assert postgres is not None
    base = postgres.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    nl = Newsletter.open(make_config(
        f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"))
    try:
        nl.init()
        yield nl
    finally:
        nl.close()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def load_examples(nl: Newsletter) -> None:
    """The three realistic 2026-10 summaries, read and assembled like `newsletter demo` does."""
    with nl.session() as session:
        topics, types = topic_slugs(session), research_type_slugs(session)
        for path in sorted(EXAMPLES.glob(f"{MONTH}-*.md")):
            upsert_summary(session, read_summary_file(path, topics=topics, research_types=types))
        assemble_edition(session, MONTH)


def insert_subscribers(nl: Newsletter, n: int, seed: int = SEED, chunk: int = 20_000,
                       all_topics_share: float = 0.40) -> dict[str, int]:
    """N active subscribers via Core executemany: 40 % all topics, the rest 1-4 random topics.

    Bypasses `add_subscriber` (email validation, ORM) to be fast; the rows are the same shape.
    Returns counts: subscribers, topic rows, all-topics subscribers.
    """
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with nl.engine.begin() as conn:
        topic_ids = [row[0] for row in conn.execute(select(Topic.id).order_by(Topic.position))]
        start = (conn.execute(select(Subscriber.id).order_by(Subscriber.id.desc()).limit(1))
                 .scalar() or 0)
    counts = {"subscribers": 0, "topic_rows": 0, "all_topics": 0}
    table_ = Subscriber.__table__
    done = 0
    while done < n:
        size = min(chunk, n - done)
        people, choices = [], []
        for offset in range(size):
            sid = start + done + offset + 1
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = (f"{_ascii(first)}.{_ascii(last)}.{sid}@{rng.choice(DOMAINS)}").lower()
            everything = rng.random() < all_topics_share
            people.append({
                "id": sid, "uid": f"{rng.getrandbits(128):032x}", "email": email,
                "email_hash": hashlib.sha256(email.encode()).hexdigest(),
                "name": f"{rng.choice(TITLES)}{first} {last}", "status": SubscriberStatus.ACTIVE,
                "all_topics": everything, "language": "en", "consent_method": ConsentMethod.IMPORT,
                "consent_at": now, "consent_source": "bench", "confirmed_at": now,
                "created_at": now, "updated_at": now})
            if everything:
                counts["all_topics"] += 1
            else:
                choices.extend({"subscriber_id": sid, "topic_id": t}
                               for t in rng.sample(topic_ids, rng.randint(1, 4)))
        with nl.engine.begin() as conn:
            conn.execute(insert(table_), people)
            conn.execute(insert(subscriber_topics), choices)
        counts["subscribers"] += size
        counts["topic_rows"] += len(choices)
        done += size
    return counts


def _ascii(text: str) -> str:
    import unicodedata
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-") or "x"


@dataclass
class BenchStore:
    """A temp dir holding a fresh SQLite store with the example edition and N subscribers."""

    subscribers: int
    seed: int = SEED
    keep: bool = False
    overrides: dict[str, object] = field(default_factory=dict)
    folder: Path = field(init=False)
    nl: Newsletter = field(init=False)
    insert_seconds: float = field(init=False, default=0.0)
    counts: dict[str, int] = field(init=False, default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.folder / "newsletter.db"

    def __enter__(self) -> BenchStore:
        self.folder = Path(tempfile.mkdtemp(prefix="nl-bench-"))
        self.nl = open_store(self.db_path, **self.overrides)
        self.nl.init()
        load_examples(self.nl)
        with timed() as t:
            self.counts = insert_subscribers(self.nl, self.subscribers, self.seed)
        self.insert_seconds = t.seconds
        return self

    def __exit__(self, *exc: object) -> None:
        self.nl.close()
        if not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)


def edition(nl: Newsletter):  # type: ignore[no-untyped-def]
    from newsletter.content.store import edition_content, get_edition
    with nl.session() as session:
        return edition_content(get_edition(session, MONTH))


# ---------------------------------------------------------------------------- SMTP


class SmtpSink:
    """`smtp-sink -c` on a free loopback port; `received()` reads its running message counter."""

    def __init__(self, max_sessions: int = 256) -> None:
        self.host, self.port = LOOPBACK, free_port(LOOPBACK)
        self.max_sessions = max_sessions
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def __enter__(self) -> SmtpSink:
        if not Path(SMTP_SINK).exists():
            raise SystemExit("smtp-sink not found: install Postfix (apt-get install postfix)")
        args = [SMTP_SINK, "-c", "-m", str(self.max_sessions)]
        if os.geteuid() == 0:  # smtp-sink refuses to keep root privileges
            args += ["-u", "nobody"]
        args += [f"{self.host}:{self.port}", "1000"]
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1):
                return self
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        self.__exit__()
        raise SystemExit(f"smtp-sink did not start: {self._output()[-500:]}")

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("ascii", "replace")

    def received(self) -> int:
        """Messages completed so far (the last `mesg=` counter smtp-sink printed)."""
        found = re.findall(r"mesg=(\d+)", self._output()[-4000:])
        return int(found[-1]) if found else 0

    def wait_for(self, count: int, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while self.received() < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received()

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None


def smtp_source(host: str, port: int, *, messages: int, size: int, sessions: int,
                timeout: float = 600.0) -> float:
    """Seconds for Postfix's smtp-source to push `messages` of `size` payload bytes over
    `sessions` parallel connections, each reused for many messages (-d), one recipient each (-N)."""
    args = [SMTP_SOURCE, "-d", "-N", "-s", str(sessions), "-l", str(size), "-m", str(messages),
            "-f", "digest@pprnet.example", "-t", "reader@bench.example", "-M", "localhost",
            f"{host}:{port}"]
    with timed() as t:
        subprocess.run(args, check=True, timeout=timeout, stdout=subprocess.DEVNULL)
    return t.seconds


def transport_supports_connections() -> bool:
    return "connections" in inspect.signature(SMTPTransport.__init__).parameters


def smtp_transport(host: str, port: int, *, connections: int = 1, batch_size: int = 200
                   ) -> tuple[SMTPTransport, int]:
    """Our SMTPTransport; (transport, connections actually used)."""
    settings = SMTPSettings(host=host, port=port, security="none")
    if transport_supports_connections():
        return SMTPTransport(settings, batch_size=batch_size,  # type: ignore[call-arg]
                             connections=connections), connections
    return SMTPTransport(settings, batch_size=batch_size), 1


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def fmt_int(x: int) -> str:
    return f"{x:,}"
