"""What-if patches for the benchmarks: candidate fixes applied at run time, never by default.

`--experiment NAME` (throughput_smtp.py, million_plan.py) imports `experiments.NAME` and calls its
`apply()`, which monkeypatches the package in this process only. They measure a recommendation
before anyone edits the package; results with an experiment are labelled as such.
"""

from __future__ import annotations

import importlib

# The first three (claim_union, smtp_fast_data, topic_cache_bound) landed in the package on
# 2026-11-26 and were removed from here; add the next what-if as a module and list it.
AVAILABLE: tuple[str, ...] = ()


def apply(names: list[str] | None) -> list[str]:
    applied = []
    for name in names or ():
        if name not in AVAILABLE:
            raise SystemExit(f"unknown experiment {name!r}; known: {', '.join(AVAILABLE)}")
        importlib.import_module(f"experiments.{name}").apply()
        applied.append(name)
    return applied
