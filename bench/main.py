"""`bench/run`: measure the control plane's speed and memory and print each figure beside its target."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import heartbeat
from bench._server import start_server


@dataclass(frozen=True)
class Row:
    """Row is one measured figure with its target."""

    metric: str
    store: str
    value: float
    unit: str
    target: str
    ok: bool | None


def _progress_printer(started: float) -> Callable[[str], None]:
    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    return progress


def bench_heartbeats(store: str, node_counts: list[int], seconds: int, progress: Callable[[str], None]) -> list[Row]:
    rows: list[Row] = []
    for nodes in node_counts:
        with tempfile.TemporaryDirectory(prefix="cara-bench-") as tmp:
            url = f"sqlite:///{tmp}/bench.db" if store == "sqlite" else store_url_for(store)
            server = start_server(url, log=Path(tmp) / "server.log")
            try:
                figures = heartbeat.measure(server, nodes, seconds=seconds, progress=progress)
            finally:
                server.stop()
        for kind in ("empty", "full"):
            rps, p99 = figures[f"{kind}_rps"], figures[f"{kind}_p99_ms"]
            rows.append(
                Row(
                    f"heartbeat {kind} max req/s @{nodes} nodes",
                    store,
                    rps,
                    "req/s",
                    ">= 2000",
                    rps >= 2000 if kind == "empty" else None,
                )
            )
            rows.append(
                Row(f"heartbeat {kind} p99 at max @{nodes}", store, figures[f"{kind}_sat_p99_ms"], "ms", "", None)
            )
            paced = figures[f"{kind}_paced_rps"]
            rows.append(Row(f"heartbeat {kind} paced req/s @{nodes}", store, paced, "req/s", "2000 offered", None))
            rows.append(
                Row(f"heartbeat {kind} p50 at 2000/s @{nodes}", store, figures[f"{kind}_p50_ms"], "ms", "", None)
            )
            rows.append(
                Row(
                    f"heartbeat {kind} p99 at 2000/s @{nodes}",
                    store,
                    p99,
                    "ms",
                    "< 50",
                    p99 < 50 if kind == "empty" else None,
                )
            )
            rows.append(
                Row(
                    f"heartbeat {kind} server CPU @{nodes}",
                    store,
                    figures[f"{kind}_server_cpu"] * 100,
                    "% core",
                    "<= 100 (one core)",
                    None,
                )
            )
            rows.append(
                Row(
                    f"heartbeat {kind} errors @{nodes}",
                    store,
                    figures[f"{kind}_errors"],
                    "",
                    "0",
                    figures[f"{kind}_errors"] == 0,
                )
            )
        target = {1000: 80, 10000: 250}.get(nodes)
        rows.append(
            Row(
                f"server RSS @{nodes} nodes",
                store,
                figures["rss_mib"],
                "MiB",
                f"<= {target}" if target else "",
                figures["rss_mib"] <= target if target else None,
            )
        )
    return rows


def store_url_for(store: str) -> str:
    raise SystemExit(f"bench: store {store!r} is not available in this build")


def print_table(rows: list[Row]) -> None:
    headers = ("METRIC", "STORE", "FIGURE", "TARGET", "MET")
    cells = [
        (r.metric, r.store, f"{r.value:,.1f} {r.unit}".strip(), r.target, {True: "yes", False: "NO", None: ""}[r.ok])
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    for line in (headers, *cells):
        print("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--quick", action="store_true", help="short runs and 1k nodes only (a smoke check)")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each load run (default 10)")
    parser.add_argument("--nodes", default="1000,10000,20000", help="node counts for heartbeat ingest")
    parser.add_argument("--stores", default="sqlite", help="comma-separated: sqlite,postgresql")
    args = parser.parse_args(argv)
    progress = _progress_printer(time.monotonic())
    counts = [1000] if args.quick else [int(n) for n in args.nodes.split(",")]
    seconds = 3 if args.quick else args.seconds
    rows: list[Row] = []
    for store in args.stores.split(","):
        rows += bench_heartbeats(store, counts, seconds, progress)
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
