"""`demo`: the main job on embedded defaults, to see the whole pipeline work in seconds."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ..demo import DEMO_AUDIENCE, DEMO_MONTH, headlines_received, run_demo
from ..mail.personalise import envelope_address
from . import cli, library_errors


@cli.command()
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path),
              help="Where to put the store, received mail and preview (default: a new temp folder).")
@library_errors
def demo(folder: Path | None) -> None:
    """Run the whole pipeline offline: store, summaries, subscribers, SMTP catcher, send.

    Example:

        newsletter demo --folder /tmp/newsletter-demo
    """
    folder = folder or Path(tempfile.mkdtemp(prefix="newsletter-demo-"))
    result = run_demo(folder)
    console = Console()
    table = Table(title=f"Edition {DEMO_MONTH}: what each subscriber received over SMTP")
    table.add_column("Subscriber")
    table.add_column("Topics chosen")
    table.add_column("Summaries received")
    got = {r.recipients[0].lower(): headlines_received(r) for r in result.received}
    for name, email, topics in DEMO_AUDIENCE:
        received = got.get(envelope_address(email)[0].lower(), [])
        table.add_row(f"{name}\n{email}", "all" if topics is None else "\n".join(sorted(topics)),
                      "\n".join(f"• {h}" for h in received) or "(nothing this month)")
    console.print(table)
    r = result.report
    console.print(f"First send: {r.sent} sent, {r.planned.no_match} skipped (no matching topic), "
                  f"{r.failed} failed, {r.variants_rendered} variants rendered, "
                  f"{len(result.received)} messages received by the SMTP catcher.")
    console.print(f"Second send: {result.second_report.sent} sent (the ledger makes it a no-op).")
    for path in result.previews:
        console.print(f"Preview: {path}")
    console.print(f"Store, received .eml files and previews: {result.folder}")
