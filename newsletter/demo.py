"""The whole monthly pipeline on embedded defaults, in a throwaway folder, fully offline."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from subscribers.models import ConsentMethod
from subscribers.store import add_subscriber

from .catcher import Received, SMTPCatcher
from .config import load_config
from .content.store import assemble_edition, edition_content, get_edition, upsert_summary
from .content.summary_file import read_summary_file
from .context import Newsletter
from .preview import write_preview
from .sending.outcomes import SendReport
from .sending.run import send_edition
from .taxonomy import research_type_slugs, topic_slugs

EXAMPLES = Path(__file__).parent / "content" / "examples"
DEMO_MONTH = "2026-10"
DEMO_AUDIENCE: tuple[tuple[str, str, frozenset[str] | None], ...] = (
    ("Dr. Amara Okafor", "amara.okafor@clinic.example", None),
    ("Jean-François Côté", "jf.cote@psy.example", frozenset({"alliance-and-therapeutic-relationship"})),
    ("Priya Raman", "priya@counselling.example",
     frozenset({"feedback-and-progress-monitoring", "outcomes-and-deterioration"})),
    ("Tomás Müller", "tomas@praxis-müller.example", frozenset({"empathy", "therapist-factors"})),
    ("Lee Chen", "lee.chen@research.example", frozenset({"neuroscience-and-brain"})),
)


@dataclass
class DemoResult:
    folder: Path
    report: SendReport
    second_report: SendReport
    received: list[Received]
    previews: list[Path] = field(default_factory=list)


def run_demo(folder: Path) -> DemoResult:
    """Create the store, load the example month and audience, send over real SMTP, send again."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "received").mkdir(exist_ok=True)
    with SMTPCatcher(folder=folder / "received") as catcher:
        config = load_config(overrides={
            "database_url": f"sqlite:///{folder / 'newsletter.db'}", "transport": "smtp",
            "smtp_host": catcher.host, "smtp_port": catcher.port, "smtp_security": "none",
            "smtp_user": "", "secret_key": secrets.token_urlsafe(32),
            "from": "PPRNet Research Digest <digest@pprnet.example>",
            "base_url": "http://localhost:8000"})
        nl = Newsletter.open(config)
        try:
            nl.init()
            _load_content(nl)
            report = send_edition(nl, DEMO_MONTH)
            second = send_edition(nl, DEMO_MONTH)
            with nl.session() as session:
                content = edition_content(get_edition(session, DEMO_MONTH))
            previews = write_preview(nl, content, None, folder / "preview" / "edition.html") or []
        finally:
            nl.close()
        return DemoResult(folder, report, second, catcher.messages, previews)


def _load_content(nl: Newsletter) -> None:
    with nl.session() as session:
        topics, types = topic_slugs(session), research_type_slugs(session)
        for path in sorted(EXAMPLES.glob(f"{DEMO_MONTH}-*.md")):
            upsert_summary(session, read_summary_file(path, topics=topics, research_types=types))
        assemble_edition(session, DEMO_MONTH)
        for name, email, chosen in DEMO_AUDIENCE:
            add_subscriber(session, email, name=name, topics=chosen, method=ConsentMethod.ADMIN,
                           source="newsletter demo")


class _HeadlineParser(HTMLParser):
    """Collects the text of every <h2>: one per summary in our edition template."""

    def __init__(self) -> None:
        super().__init__()
        self.headlines: list[str] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h2":
            self._inside = True
            self.headlines.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.headlines[-1] += data


def headlines_received(received: Received) -> list[str]:
    """The summaries a received message carries, read from its parsed HTML part."""
    body = received.parse().get_body(("html",))
    parser = _HeadlineParser()
    parser.feed(body.get_content() if body is not None else "")
    return [" ".join(h.split()) for h in parser.headlines]
