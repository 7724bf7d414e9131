"""`bench/run`: measure the control plane's speed and memory and print each figure beside its target."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench import cli, heartbeat, notready, scheduling
from bench._pg import fresh_schema, private_cluster
from bench._server import start_server

STORES = ("sqlite", "postgresql")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Row:
    """Row is one measured figure with its target; key (with store) names it in the JSON output."""

    metric: str
    store: str
    value: float
    unit: str
    target: str
    ok: bool | None
    key: str | None = None


def _progress_printer(started: float) -> Progress:
    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    return progress


class StoreUrls:
    """StoreUrls hands out URLs of fresh, empty stores: SQLite files in a temporary directory, or new schemas
    of one private PostgreSQL cluster started on first use."""

    def __init__(self, stack: contextlib.ExitStack, tmp: Path) -> None:
        self._stack, self._tmp, self._pg_base = stack, tmp, ""
        self._count = 0

    def fresh(self, store: str) -> str:
        self._count += 1
        if store == "sqlite":
            return f"sqlite://{self._tmp}/bench-{self._count}.db"
        if not self._pg_base:
            self._pg_base = self._stack.enter_context(private_cluster())
        return fresh_schema(self._pg_base)

    def log(self, what: str) -> Path:
        return self._tmp / f"{self._count:03}-{what}.log"


def bench_heartbeats(urls: StoreUrls, store: str, counts: list[int], seconds: int, progress: Progress) -> list[Row]:
    rows: list[Row] = []
    for nodes in counts:
        url = urls.fresh(store)
        progress(f"seeding {nodes:,} nodes into the store")
        asyncio.run(heartbeat.seed_nodes(url, nodes))
        server = start_server(url, log=urls.log("heartbeat"))
        try:
            figures = heartbeat.measure(server, nodes, seconds=seconds, progress=progress)
        finally:
            server.stop()
        headline = nodes == max(counts)  # the JSON's single figure per store is the largest fleet's
        for kind in ("empty", "full"):
            rps, p99 = figures[f"{kind}_rps"], figures[f"{kind}_p99_ms"]
            rows += [
                Row(
                    f"heartbeat {kind}: max req/s @{nodes:,} nodes",
                    store,
                    rps,
                    "req/s",
                    ">= 2,000 (one core)",
                    rps >= 2000,
                    f"heartbeat_{kind}_rps" if headline else None,
                ),
                Row(f"heartbeat {kind}: p99 at max @{nodes:,}", store, figures[f"{kind}_sat_p99_ms"], "ms", "", None),
                Row(
                    f"heartbeat {kind}: achieved of 2,000/s offered @{nodes:,}",
                    store,
                    figures[f"{kind}_paced_rps"],
                    "req/s",
                    "",
                    None,
                ),
                Row(f"heartbeat {kind}: p50 at 2,000/s @{nodes:,}", store, figures[f"{kind}_p50_ms"], "ms", "", None),
                Row(
                    f"heartbeat {kind}: p99 at 2,000/s @{nodes:,}",
                    store,
                    p99,
                    "ms",
                    "< 50",
                    p99 < 50,
                    "heartbeat_p99_ms" if headline and kind == "empty" else None,
                ),
                Row(
                    f"heartbeat {kind}: server CPU flat out @{nodes:,}",
                    store,
                    figures[f"{kind}_server_cpu"] * 100,
                    "% core",
                    "<= 100 (pinned to one core)",
                    None,
                ),
                Row(
                    f"heartbeat {kind}: errors @{nodes:,}",
                    store,
                    figures[f"{kind}_errors"],
                    "",
                    "0",
                    figures[f"{kind}_errors"] == 0,
                ),
            ]
        target = {1000: 80, 10000: 250}.get(nodes)
        rows.append(
            Row(
                f"server RSS after the runs @{nodes:,} nodes",
                store,
                figures["rss_mib"],
                "MiB",
                f"<= {target}" if target else "",
                figures["rss_mib"] <= target if target else None,
                {1000: "server_rss_mib_1k", 10000: "server_rss_mib_10k"}.get(nodes),
            )
        )
    return rows


def bench_notready(urls: StoreUrls, store: str, progress: Progress) -> list[Row]:
    progress(f"NotReady detection: {notready.PROBES} nodes silenced at staggered times, grace {notready.GRACE_S:g}s")
    server = start_server(urls.fresh(store), log=urls.log("notready"), extra=notready.SERVER_ARGS)
    try:
        detection = notready.measure(server.url)
    finally:
        server.stop()
    grace = notready.GRACE_S
    target = f"<= grace + 1 = {grace + 1:g}"
    return [
        Row(
            f"NotReady after last beat, median of {notready.PROBES} (grace {grace:g}s)",
            store,
            detection.median,
            "s",
            target,
            detection.median <= grace + 1,
            "notready_detect_s_median",
        ),
        Row(
            f"NotReady after last beat, max of {notready.PROBES} (grace {grace:g}s)",
            store,
            detection.max,
            "s",
            target,
            detection.max <= grace + 1,
            "notready_detect_s_max",
        ),
        Row(
            "NotReady overshoot beyond grace, max",
            store,
            detection.max - grace,
            "s",
            "<= 1",
            detection.max <= grace + 1,
        ),
    ]


def bench_caractrl(urls: StoreUrls, store: str, runs: int, progress: Progress) -> list[Row]:
    server = start_server(urls.fresh(store), log=urls.log("caractrl"))
    try:
        progress("caractrl: registering 1,000 nodes")
        heartbeat.register(server.url, 1000)
        progress(f"caractrl: timing `caractrl get nodes` {runs} times")
        times = cli.time_get_nodes(server.url, runs=runs)
    finally:
        server.stop()
    median = cli.median(times)
    return [
        Row(
            f"caractrl get nodes @1,000 nodes, median of {runs}",
            store,
            median * 1000,
            "ms",
            "<= 300",
            median <= 0.3,
            "caractrl_get_1k_s",
        ),
        Row(f"caractrl get nodes @1,000 nodes, max of {runs}", store, max(times) * 1000, "ms", "", None),
    ]


def bench_scheduling(urls: StoreUrls, store: str, progress: Progress) -> list[Row]:
    seconds, passes = scheduling.measure(urls.fresh(store), urls.log("scheduling"), progress)
    return [
        Row(
            f"schedule {scheduling.COUNT:,} Pending onto {scheduling.COUNT:,} nodes ({passes} pass)",
            store,
            seconds,
            "s",
            "<= 1",
            seconds <= 1,
            "schedule_1k_s",
        )
    ]


def _guarded(name: str, store: str, run: Callable[[], list[Row]], progress: Progress) -> list[Row]:
    """_guarded runs one benchmark; a failure becomes a failed row (and a message), not the end of the run."""
    try:
        return run()
    except Exception as exc:
        progress(f"{name} on {store} FAILED: {type(exc).__name__}: {exc}")
        return [Row(f"{name}: FAILED ({type(exc).__name__}, see stderr)", store, float("nan"), "", "", False)]


def print_table(rows: list[Row]) -> None:
    headers = ("METRIC", "STORE", "FIGURE", "TARGET", "MET")
    cells = [
        (r.metric, r.store, f"{r.value:,.1f} {r.unit}".strip(), r.target, {True: "yes", False: "NO", None: ""}[r.ok])
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    for line in (headers, *cells):
        print("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip())


def as_json(rows: list[Row]) -> dict[str, Any]:
    """as_json gives each keyed figure per store ({"sqlite": ..., "postgresql": ...}); seconds stay seconds
    (the table shows caractrl in ms). Every row, keyed or not, is under "rows"."""
    figures: dict[str, Any] = {}
    for row in rows:
        if row.key is None:
            continue
        value = row.value / 1000 if row.key == "caractrl_get_1k_s" else row.value
        figures.setdefault(row.key, {})[row.store] = round(value, 4)
    return {**figures, "rows": [asdict(row) for row in rows]}


@contextlib.contextmanager
def _workspace() -> Iterator[tuple[contextlib.ExitStack, Path]]:
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cara-bench-")))
        yield stack, tmp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--json-file", type=Path, help="also write the JSON object to this file")
    parser.add_argument("--quick", action="store_true", help="a smoke run: short runs, 1k nodes, SQLite only")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each heartbeat load run (default 10)")
    parser.add_argument("--nodes", default="1000,10000,20000", help="node counts for heartbeat ingest")
    parser.add_argument("--stores", default=None, help="comma-separated of sqlite,postgresql (default both)")
    parser.add_argument(
        "--only", default="heartbeat,notready,caractrl,scheduling", help="comma-separated benchmarks to run"
    )
    args = parser.parse_args(argv)
    progress = _progress_printer(time.monotonic())
    counts = [1000] if args.quick else [int(n) for n in args.nodes.split(",")]
    seconds = 3 if args.quick else args.seconds
    stores = (args.stores or ("sqlite" if args.quick else ",".join(STORES))).split(",")
    if unknown := set(stores) - set(STORES):
        parser.error(f"--stores: unknown {sorted(unknown)}; choose from {', '.join(STORES)}")
    only = set(args.only.split(","))
    runs = 5 if args.quick else 15
    rows: list[Row] = []
    with _workspace() as (stack, tmp):
        urls = StoreUrls(stack, tmp)
        for store in stores:
            progress(f"== store {store}")
            benchmarks: dict[str, Callable[[], list[Row]]] = {
                "heartbeat": partial(bench_heartbeats, urls, store, counts, seconds, progress),
                "notready": partial(bench_notready, urls, store, progress),
                "caractrl": partial(bench_caractrl, urls, store, runs, progress),
                "scheduling": partial(bench_scheduling, urls, store, progress),
            }
            for name, run in benchmarks.items():
                if name in only:
                    rows += _guarded(name, store, run, progress)
    if args.json_file:
        args.json_file.write_text(json.dumps(as_json(rows), indent=2) + "\n")
    if args.json:
        print(json.dumps(as_json(rows), indent=2))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
