#!/usr/bin/env python3
"""Where a scenario's CPU goes: py-spy's collapsed stacks (``bench/run.py --profile``) summed.

    python bench/profile_summary.py var/profile/retrieve-*.txt [--top 40]

Prints, for the functions seen in the samples, the share of on-CPU samples spent inside
them (inclusive) and in them alone (self). py-spy leaves out idle samples (a thread
waiting on a socket), so the shares are of CPU time, not of wall time.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_LINE = re.compile(r"\s*\((?P<file>[^:()]+)(?::\d+)?\)$")


def _frame(raw: str) -> str:
    """``get (rest_framework/generics.py:123)`` → ``get (rest_framework/generics.py)``."""
    match = _LINE.search(raw)
    if not match:
        return raw.strip()
    name = raw[: match.start()].strip()
    path = match.group("file")
    for marker in ("site-packages/", "python3.11/", f"{ROOT}/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


# Where a request's samples go, by the first of these frames found in the stack (in order).
GROUPS = (
    ("logging (access line and others)", "Logger._log"),
    ("API-key authentication", "ApiKeyAuthentication.authenticate"),
    ("rate limit (Redis)", "ApiKeyRateThrottle.allow_request"),
    ("MTN call (requests)", "MtnClient._exchange"),
    ("view, services and their SQL", "APIView.dispatch"),
    ("middleware, WSGI and the rest", "WSGIHandler.__call__"),
)


def _stacks(paths: list[Path], root: str) -> list[tuple[list[str], int]]:
    stacks = []
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = [_frame(f) for f in stack.split(";")[1:]]  # first: process/thread
            at = next((i for i, f in enumerate(frames) if f.startswith(root)), None)
            if at is not None:
                stacks.append((frames[at:], int(count)))
    return stacks


def grouped(paths: list[Path], root: str) -> dict[str, float]:
    """Share of in-request samples per GROUPS entry (each sample counted once)."""
    totals = dict.fromkeys((name for name, _ in GROUPS), 0)
    stacks = _stacks(paths, root)
    total = sum(count for _, count in stacks) or 1
    for frames, count in stacks:
        for name, marker in GROUPS:
            if any(f.startswith(marker) for f in frames):
                totals[name] += count
                break
    return {name: 100 * value / total for name, value in totals.items()}


def summarise(paths: list[Path], top: int, root: str) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            samples = int(count)
            frames = [_frame(f) for f in stack.split(";")[1:]]  # first: process/thread
            # Only samples inside a request: gthread's pool threads and main loop also show
            # up while they wait on a lock or in select(), which py-spy cannot always tell
            # from running.
            at = next((i for i, f in enumerate(frames) if f.startswith(root)), None)
            if at is None:
                continue
            frames = frames[at:]
            total += samples
            for frame in set(frames):
                inclusive[frame] += samples
            if frames:
                own[frames[-1]] += samples
    lines = [
        f"{total} samples in requests",
        "| incl % | self % | function |",
        "| ---: | ---: | --- |",
    ]
    for frame, samples in inclusive.most_common(top):
        lines.append(
            f"| {100 * samples / total:5.1f} | {100 * own[frame] / total:5.1f} | `{frame}` |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--root", default="WSGIHandler.__call__", help="count only stacks through this frame"
    )
    parser.add_argument("--groups", action="store_true", help="shares per component only")
    args = parser.parse_args()
    if args.groups:
        for name, share in grouped(args.paths, args.root).items():
            print(f"{share:5.1f} %  {name}")
        return
    print(summarise(args.paths, args.top, args.root))


if __name__ == "__main__":
    main()
