"""Where a beat's CPU goes: py-spy samples cara-server while wrk drives heartbeats flat out, and the top
functions by own time and by inclusive time are printed.

`python -m bench.profile [--store sqlite|postgresql] [--kind full|empty] [--seconds 10]`; py-spy must be on
PATH or given with --py-spy (e.g. `pip install --target DIR py-spy`), and the server needs ptrace rights (root).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench import _proc, heartbeat
from bench._server import LOAD_CPU, CpuSource, start_server

NODES = 1000


#: Leaf functions where a thread waits rather than works (the event loop's select, the store thread's queue).
IDLE = ("select ", "Condition.wait ", "Queue.get ", "Event.wait ")
#: Frames under which nearly everything runs (the interpreter, click, asyncio.run): left out of the inclusive list.
EVERYWHERE = 0.9
#: Functions of ours whose inclusive share is always printed: the beat route, the store write, the controller.
FOCUS = (
    "heartbeat (nodes.py",
    "KindStore.update_node",
    "merge (nodes.py",
    "record (history.py",
    "NodeLifecycleController._write",
    "NodeLifecycleController",
    "model_validate_json",
    "model_dump",
    "JSONEncoder",
    "flush",
)


def top(collapsed: Path, count: int) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]], list[tuple[str, int]]]:
    """top reads py-spy's collapsed stacks; returns the busy samples (a waiting thread's are left out) and the
    top functions by own and by inclusive time."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        samples = int(n)
        frames = [_name(frame) for frame in stack.split(";")[1:]]  # the first one names the thread
        if not frames or any(frames[-1].startswith(idle) or f".{idle}" in frames[-1] for idle in IDLE):
            continue
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    common = [(frame, n) for frame, n in inclusive.most_common() if n < EVERYWHERE * total]
    focus = [(key, max((n for frame, n in inclusive.items() if key in frame), default=0)) for key in FOCUS]
    return total, own.most_common(count), common[:count], focus


def _name(frame: str) -> str:
    """_name turns py-spy's `function (path/file.py:line)` into `function (file.py:line)`."""
    function, _, where = frame.partition(" (")
    return f"{function} ({where.rsplit('/', 1)[-1]}" if where else function


@contextlib.contextmanager
def _store(store: str, tmp: Path) -> Iterator[tuple[str, CpuSource | None]]:
    if store == "sqlite":
        yield f"sqlite://{tmp}/profile.db", None
        return
    from bench._pg import fresh_schema, private_cluster

    with private_cluster() as cluster:
        yield fresh_schema(cluster.url), cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--kind", choices=heartbeat.KINDS, default="full")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy", help="the py-spy executable")
    args = parser.parse_args(argv)
    _proc.pin(os.getpid(), LOAD_CPU)
    with tempfile.TemporaryDirectory(prefix="cara-profile-") as name, _store(args.store, Path(name)) as (url, db):
        tmp = Path(name)
        asyncio.run(heartbeat.seed_nodes(url, NODES))
        server = start_server(url, log=tmp / "server.log", db=db)
        try:
            heartbeat.measure_warm_up(server, NODES, progress=lambda m: print(m, file=sys.stderr))
            out = tmp / "stacks.txt"
            spy = [args.py_spy, "record", "-p", str(server.process.pid), "-d", str(args.seconds)]
            spy += ["-r", "250", "-f", "raw", "-o", str(out), "--nonblocking"]
            load = threading.Thread(
                target=heartbeat.run_wrk,
                args=(server.url, NODES),
                kwargs={"full": args.kind == "full", "seconds": args.seconds + 2},
            )
            load.start()
            subprocess.run(spy, check=True, capture_output=True)
            load.join()
        finally:
            server.stop()
        total, own, inclusive, focus = top(out, args.top)
    print(f"{total} busy samples of cara-server ({args.store}, {args.kind} beats flat out, {args.seconds}s)")
    print("\nours, inclusive (the largest frame matching each):")
    for key, samples in focus:
        print(f"{samples / max(total, 1):6.1%}  {key}")
    for title, rows in (("own time", own), ("inclusive time", inclusive)):
        print(f"\ntop by {title}:")
        for frame, samples in rows:
            print(f"{samples / total:6.1%}  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
