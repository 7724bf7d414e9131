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


def top(collapsed: Path, count: int) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """top reads py-spy's collapsed stacks; returns the samples and the top functions by own and inclusive time."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        samples = int(n)
        frames = [frame.split(" (", 1)[0] + " " + frame.rsplit("/", 1)[-1].rstrip(")") for frame in stack.split(";")]
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames[1:]):  # the first frame is the thread
            inclusive[frame] += samples
    return total, own.most_common(count), inclusive.most_common(count)


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
        total, own, inclusive = top(out, args.top)
    print(f"{total} samples of cara-server ({args.store}, {args.kind} beats flat out, {args.seconds}s)")
    for title, rows in (("own time", own), ("inclusive time", inclusive)):
        print(f"\ntop by {title}:")
        for frame, samples in rows:
            print(f"{samples / total:6.1%}  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
