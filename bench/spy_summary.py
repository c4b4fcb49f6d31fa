"""Summarise a py-spy raw (collapsed-stack) profile: where the CPU time of a send goes.

    /tmp/venv/bin/pip install py-spy
    /tmp/venv/bin/py-spy record -r 200 -f raw -o /tmp/spy.txt --threads -- \\
        /tmp/venv/bin/python bench/throughput_smtp.py --subscribers 30000 --baseline-runs 1
    /tmp/venv/bin/python bench/spy_summary.py /tmp/spy.txt [--within Sender.send] [--top 25]

Only stacks that contain `--within` (default: the send itself, including the SMTP worker threads,
whose stacks start at the thread pool) are counted. Without `--idle`, py-spy records only threads
that are running, so a sample is roughly CPU time. "self" is the innermost frame (C calls show up
as their Python caller), "incl." any frame of the stack.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^():]+)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    file = m["file"]
    for marker in ("site-packages/", "lib/python3", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{m['func']} ({file})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("raw", type=Path)
    p.add_argument("--within", action="append",
                   default=None, help="count only stacks containing this text "
                                      "(repeatable; default: Sender.send and the smtp threads)")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    within = args.within or ["Sender.send (", "Lane.send ("]
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    total = 0
    for line in args.raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        if not any(w in stack for w in within):
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0].split(":", 1)[-1].strip() if frames[0].startswith("thread") else "?"
        by_thread["smtp worker threads" if thread.startswith("smtp") else thread] += count
        names = [frame_name(f) for f in frames[1:]]
        total += count
        if names:
            own[names[-1]] += count
        for name in set(names):
            incl[name] += count
    if not total:
        print("no matching samples")
        return 1
    print(f"{total} samples within {' | '.join(within)}")
    print("\nby thread:")
    for name, n in by_thread.most_common():
        print(f"  {n / total:6.1%}  {name}")
    print(f"\nself time, top {args.top}:")
    for name, n in own.most_common(args.top):
        print(f"  {n / total:6.1%}  {name}")
    print(f"\ninclusive time, top {args.top}:")
    for name, n in incl.most_common(args.top):
        print(f"  {n / total:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
