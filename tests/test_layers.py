"""The layers of docs/design.md, enforced: every import in the library is read with `ast` and must
point to a lower layer; no package imports one that imports it back; only the web and CLI edges
import Flask or click. The public API (`newsletter.__all__`) is pinned, as httpx pins its own."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import newsletter

from .conftest import REPO

# Lowest first. A module may import its own package and any package of a lower layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("newsletter.errors", "newsletter.paths", "newsletter.catcher"),
    ("newsletter.text", "newsletter.monthly_rule", "newsletter.tokens", "newsletter.domain",
     "newsletter.markdown", "newsletter.providers", "newsletter.i18n", "newsletter.verp"),
    ("newsletter.config", "newsletter.crossref"),
    ("newsletter.db",),
    ("newsletter.taxonomy",),
    ("newsletter.context",),
    ("newsletter.content", "newsletter.editors"),
    ("newsletter.mail",),
    ("newsletter.transports",),
    ("subscribers",),
    ("newsletter.sending",),
    ("newsletter.notify", "newsletter.preview", "newsletter.archive", "newsletter.privacy",
     "newsletter.clicks", "newsletter.feedback", "newsletter.coverage"),
    ("newsletter.schedule", "newsletter.webhooks", "newsletter.bounces", "newsletter.status"),
    ("newsletter.schema", "newsletter.demo", "newsletter.web"),
    ("newsletter.cli",),
    ("newsletter", "newsletter.__main__"),
)
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}
FRAMEWORKS = {"flask": {"newsletter.web"}, "werkzeug": {"newsletter.web"},
              "click": {"newsletter.cli", "newsletter.__main__"}}
LIBRARY = ("newsletter", "subscribers")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    """`newsletter.sending.engine` → `newsletter.sending`; `subscribers.store` → `subscribers`."""
    parts = module.split(".")
    if parts[0] == "subscribers":
        return "subscribers"
    return ".".join(parts[:2])


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file, relative ones resolved."""
    module = module_name(path)
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                if not node.module:  # `from . import store`: each name may be a module
                    found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
                    continue
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return found


def library_files() -> list[Path]:
    """Alembic's scripts are loaded by Alembic, not imported, so they are outside the graph."""
    files = [p for root in LIBRARY for p in (REPO / root).rglob("*.py")]
    return sorted(p for p in files if "migrations" not in p.parts)


def edges() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in library_files():
        source = package_of(module_name(path))
        for line, target in imports(path):
            if target.split(".")[0] not in LIBRARY:
                continue
            destination = package_of(target)
            if destination != source:
                found[(source, destination)].append(f"{path.relative_to(REPO)}:{line}")
    return found


def test_every_library_package_has_a_layer() -> None:
    packages = {package_of(module_name(p)) for p in library_files()}
    assert packages - set(RANK) == set(), "add the new package to LAYERS and docs/design.md"


def test_imports_point_down_the_layers() -> None:
    upward = {f"{a} -> {b}": where for (a, b), where in edges().items()
              if a in RANK and b in RANK and RANK[b] >= RANK[a]}
    assert upward == {}


def test_no_package_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges():
        graph[a].add(b)
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif len(path) < len(graph) + 1:
                visit(nxt, path + [nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert cycles == []


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_only_the_edges_import_web_and_cli_frameworks(framework: str) -> None:
    offenders = [f"{p.relative_to(REPO)}:{line}" for p in library_files()
                 for line, target in imports(p)
                 if target.split(".")[0] == framework
                 and package_of(module_name(p)) not in FRAMEWORKS[framework]]
    assert offenders == []


def test_the_layer_table_in_the_design_document_is_this_one() -> None:
    design = (REPO / "docs" / "design.md").read_text(encoding="utf-8")
    for rank, packages in enumerate(LAYERS):
        row = f"| {rank} | " + ", ".join(f"`{p}`" for p in packages) + " |"
        assert row in design, f"docs/design.md lacks the row {row}"


PUBLIC_API = ["ConfigError", "ContentError", "ContentErrors", "DeliveryError", "Newsletter",
              "NewsletterError", "PermanentDeliveryError", "RenderError", "SendInProgress",
              "StateError", "StoreError", "TemporaryDeliveryError", "__version__", "load_config",
              "make_transport", "send_edition"]


def test_public_api_is_pinned() -> None:
    assert sorted(newsletter.__all__) == PUBLIC_API
    for name in newsletter.__all__:
        assert getattr(newsletter, name) is not None, name
