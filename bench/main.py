"""`bench/run`: measure the control plane's speed and memory and print each figure beside its target."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from math import nan
from pathlib import Path
from typing import Any

from bench import _proc, cli, discovery, fleet, floor, heartbeat, notready, scheduling
from bench._pg import Cluster, fresh_schema, private_cluster
from bench._server import LOAD_CPU, start_server

STORES = ("sqlite", "postgresql")
BENCHMARKS = ("heartbeat", "notready", "caractrl", "scheduling", "discovery", "fleet")
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
        self._stack, self._tmp = stack, tmp
        self.cluster: Cluster | None = None
        self._count = 0

    def fresh(self, store: str) -> str:
        self._count += 1
        if store == "sqlite":
            return f"sqlite://{self._tmp}/bench-{self._count}.db"
        if self.cluster is None:
            self.cluster = self._stack.enter_context(private_cluster())
        return fresh_schema(self.cluster.url)

    def log(self, what: str) -> Path:
        return self._tmp / f"{self._count:03}-{what}.log"


#: Issue 16's targets: our CPU per full beat as a multiple of the bare-uvicorn floor of the same run.
FLOOR_RATIO_TARGET = {"sqlite": 6.0, "postgresql": 12.0}
HALF_P99_TARGET_MS = 50.0
#: A response with a body over a kept-alive connection: a Nagle stall would put it at ~40 ms.
KEEPALIVE_P50_TARGET_MS = 20.0
#: `GET /api/v1/nodes` at 1,000 Nodes, the server's side (its CPU and its database's per answer): the Go
#: Caravanserai's 62 ms on one core of the issue's machine (issue 16). The wall time is printed beside it: on a
#: shared machine it is mostly the other tenants of the server's core and the client reading 1.7 MB.
LIST_TARGET_MS = 62.0
#: Registering 1,000 Nodes one by one over one connection: the Go Caravanserai's 4.5 s on the issue's machine.
GO_REGISTER_1K_S = 4.5
#: Lists timed per run of the heartbeat section.
LIST_RUNS = 15

Floors = dict[tuple[str, str], heartbeat.Load]


def bench_floors(urls: StoreUrls, store: str, seconds: int, progress: Progress) -> tuple[list[Row], Floors]:
    """bench_floors measures each floor flat out with empty and full beats, pinned as cara-server is."""
    rows: list[Row] = []
    floors: Floors = {}
    for which in floor.FLOORS:
        progress(f"floor {which}: empty and full beats flat out for {seconds}s each")
        server = floor.start_floor(which, log=urls.log(f"floor-{which}"))
        try:
            for kind in heartbeat.KINDS:
                load = heartbeat.drive(server, 1000, full=kind == "full", seconds=seconds)
                floors[which, kind] = load
                key = f"floor_{which}_cpu_ms_{kind}"
                rows += [
                    Row(f"floor {which} {kind}: max req/s", store, load.wrk.rps, "req/s", "", None),
                    Row(f"floor {which} {kind}: CPU per request", store, load.cpu_ms, "ms", "", None, key),
                ]
        finally:
            server.stop()
    return rows, floors


def bench_heartbeats(
    urls: StoreUrls, store: str, counts: list[int], seconds: int, floors: Floors, progress: Progress
) -> list[Row]:
    rows: list[Row] = []
    for nodes in counts:
        url = urls.fresh(store)
        progress(f"seeding {nodes:,} nodes into the store")
        asyncio.run(heartbeat.seed_nodes(url, nodes))
        server = start_server(url, log=urls.log("heartbeat"), db=urls.cluster if store == "postgresql" else None)
        try:
            figures = heartbeat.measure(server, nodes, seconds=seconds, progress=progress)
            progress(f"{nodes} nodes: GET /api/v1/nodes/<name> back to back over one keep-alive connection")
            get = heartbeat.keepalive_get(server, nodes)
            rss = server.rss_mib()  # before the lists: what the beats leave, as the target has always been read
            progress(f"{nodes} nodes: GET /api/v1/nodes back to back, {LIST_RUNS} times")
            listed = heartbeat.time_list(server, LIST_RUNS)
            rss_listed = server.rss_mib()
        finally:
            server.stop()
        headline = nodes == min(counts)  # the JSON's single figure per store is the smallest fleet's (1k)
        at = f"@{nodes:,}"
        for kind, (flat, half) in figures.items():

            def key(name: str, *, _kind: str = kind, _headline: bool = headline) -> str | None:
                return f"heartbeat_{_kind}_{name}" if _headline else None

            uvicorn_floor, go_floor = floors.get(("uvicorn", kind)), floors.get(("go", kind))
            rows += [
                Row(f"heartbeat {kind} {at}: max req/s", store, flat.wrk.rps, "req/s", "", None, key("rps")),
                Row(f"heartbeat {kind} {at}: p50 flat out", store, flat.wrk.p50_ms, "ms", "", None),
                Row(f"heartbeat {kind} {at}: p99 flat out", store, flat.wrk.p99_ms, "ms", "", None),
                Row(
                    f"heartbeat {kind} {at}: CPU per beat (server + database)",
                    store,
                    flat.cpu_ms,
                    "ms",
                    "",
                    None,
                    key("cpu_ms"),
                ),
            ]
            if uvicorn_floor is not None:
                ratio = flat.cpu_ms / uvicorn_floor.cpu_ms
                limit = FLOOR_RATIO_TARGET[store] if kind == "full" else None
                rows.append(
                    Row(
                        f"heartbeat {kind} {at}: CPU per beat / bare-uvicorn floor",
                        store,
                        ratio,
                        "x",
                        f"<= {limit:g}" if limit else "",
                        ratio <= limit if limit else None,
                        key("floor_ratio"),
                    )
                )
            if go_floor is not None:
                rows.append(
                    Row(
                        f"heartbeat {kind} {at}: CPU per beat / Go net/http floor",
                        store,
                        flat.cpu_ms / go_floor.cpu_ms,
                        "x",
                        "",
                        None,
                        key("go_ratio"),
                    )
                )
            p99 = half.wrk.p99_ms
            rows += [
                Row(f"heartbeat {kind} {at}: achieved at half max offered", store, half.wrk.rps, "req/s", "", None),
                Row(f"heartbeat {kind} {at}: p50 at half max", store, half.wrk.p50_ms, "ms", "", None),
                Row(
                    f"heartbeat {kind} {at}: p99 at half max",
                    store,
                    p99,
                    "ms",
                    f"< {HALF_P99_TARGET_MS:g}",
                    p99 < HALF_P99_TARGET_MS,
                    key("p99_half_ms"),
                ),
                Row(
                    f"heartbeat {kind} {at}: server + database CPU flat out",
                    store,
                    flat.server_cpu * 100,
                    "% core",
                    "",
                    None,
                ),
                Row(
                    f"heartbeat {kind} {at}: errors",
                    store,
                    flat.wrk.errors + half.wrk.errors,
                    "",
                    "0",
                    flat.wrk.errors + half.wrk.errors == 0,
                ),
            ]
        rows += [
            Row(
                f"GET a Node over one keep-alive connection {at}: p50",
                store,
                get.p50_ms,
                "ms",
                f"< {KEEPALIVE_P50_TARGET_MS:g} (no Nagle stall)",
                get.p50_ms < KEEPALIVE_P50_TARGET_MS and get.errors == 0,
                "keepalive_get_p50_ms" if headline else None,
            ),
            Row(
                f"GET a Node over one keep-alive connection {at}: p99",
                store,
                get.p99_ms,
                "ms",
                "",
                None,
                "keepalive_get_p99_ms" if headline else None,
            ),
            Row(
                f"GET /api/v1/nodes {at}: server + database CPU per list",
                store,
                listed.cpu_ms,
                "ms",
                f"<= {LIST_TARGET_MS:g}" if nodes == 1000 else "",
                listed.cpu_ms <= LIST_TARGET_MS if nodes == 1000 else None,
                "list_nodes_cpu_ms" if headline else None,
            ),
            Row(f"GET /api/v1/nodes {at}: median wall (one connection)", store, listed.median_ms, "ms", "", None),
            Row(f"GET /api/v1/nodes {at}: answer size", store, listed.size_bytes / 1000, "kB", "", None),
        ]
        target = {1000: 80, 10000: 250}.get(nodes)
        rows.append(
            Row(
                f"server RSS after the runs {at} nodes",
                store,
                rss,
                "MiB",
                f"<= {target}" if target else "",
                rss <= target if target else None,
                {1000: "server_rss_mib_1k", 10000: "server_rss_mib_10k"}.get(nodes),
            )
        )
        rows.append(Row(f"server RSS after the runs and the lists {at} nodes", store, rss_listed, "MiB", "", None))
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
        progress("caractrl: registering 1,000 nodes one by one over one connection")
        registering = heartbeat.register_one_by_one(server.url, 1000)
        progress(f"caractrl: timing `caractrl get nodes` {runs} times")
        times = cli.time_get_nodes(server.url, runs=runs)
    finally:
        server.stop()
    median = cli.median(times)
    return [
        Row(
            "registering 1,000 nodes one by one over one connection",
            store,
            registering,
            "s",
            f"<= {GO_REGISTER_1K_S:g} (Go)",
            registering <= GO_REGISTER_1K_S,
            "register_1k_one_connection_s",
        ),
        Row(
            f"caractrl get nodes @1,000 nodes, median of {runs}",
            store,
            median * 1000,
            "ms",
            "<= 250",
            median <= 0.25,
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


#: Fleet sizes of the discovery rows (issue 16: flat at 1k, 10k and 20k Nodes).
DISCOVERY_NODES = (1000, 10000, 20000)
#: Largest growth of per-agent discovery CPU from the smallest fleet to the largest that still counts as flat.
DISCOVERY_FLAT = 2.0


def bench_discovery(urls: StoreUrls, store: str, sizes: tuple[int, ...], progress: Progress) -> list[Row]:
    """bench_discovery prices peer discovery per agent per 5-minute period at each fleet size (bench/discovery.py)."""
    rows: list[Row] = []
    costs: list[discovery.DiscoveryCost] = []
    for nodes in sizes:
        progress(f"discovery: {nodes:,} addressed Nodes, {discovery.SAMPLE} agents asking for their peers")
        url = urls.fresh(store)
        cost = discovery.measure(url, nodes, urls.log("discovery"), urls.cluster if store == "postgresql" else None)
        costs.append(cost)
        at = f"@{nodes:,} nodes"
        key = {1000: "1k", 10000: "10k", 20000: "20k"}.get(nodes)
        rows += [
            Row(
                f"discovery {at}: bytes per agent per 5 min (1 answer + 4 not-modified)",
                store,
                cost.bytes_per_period,
                "B",
                "flat",
                None,
                f"discovery_bytes_per_agent_{key}" if key else None,
            ),
            Row(
                f"discovery {at}: server CPU per agent per 5 min",
                store,
                cost.cpu_ms_per_period,
                "ms",
                "flat",
                None,
                f"discovery_cpu_ms_per_agent_{key}" if key else None,
            ),
        ]
    if len(costs) > 1:
        growth = costs[-1].cpu_ms_per_period / costs[0].cpu_ms_per_period
        size = costs[-1].bytes_per_period / costs[0].bytes_per_period
        rows.append(
            Row(
                f"discovery CPU per agent, {costs[-1].nodes:,} vs {costs[0].nodes:,} nodes",
                store,
                growth,
                "x",
                f"<= {DISCOVERY_FLAT:g} (flat)",
                growth <= DISCOVERY_FLAT and size <= DISCOVERY_FLAT,
                "discovery_cpu_growth",
            )
        )
    return rows


def bench_fleet(urls: StoreUrls, store: str, nodes: int, seconds: float, progress: Progress) -> list[Row]:
    """bench_fleet runs the fleet simulator (bench/fleet.py) with the agent's cadence against one server."""
    url = urls.fresh(store)
    config = fleet.FleetConfig(nodes, seconds, store)
    db = urls.cluster if store == "postgresql" else None
    f = fleet.run_fleet(config, urls.log("fleet").parent, url, db, progress=progress)
    progress(fleet.summary(f))
    at = f"@{nodes:,} agents, {seconds:g}s"
    growth = f["rss_growth_second_half_percent"]
    kept_up = not f["fell_behind"] and f["achieved_share"] >= fleet.ACHIEVED_MIN
    return [
        Row(f"fleet {at}: offered", store, f["offered_rps"], "req/s", "", None, "fleet_offered_rps"),
        Row(
            f"fleet {at}: achieved",
            store,
            f["achieved_rps"],
            "req/s",
            f">= {fleet.ACHIEVED_MIN:.0%} of offered, lag p99 <= {fleet.MAX_LAG_P99_S:g}s",
            kept_up,
            "fleet_achieved_rps",
        ),
        Row(f"fleet {at}: errors", store, f["errors"], "", "0", f["errors"] == 0, "fleet_errors"),
        Row(f"fleet {at}: beat p50", store, f["beat_p50_ms"], "ms", "", None, "fleet_beat_p50_ms"),
        Row(f"fleet {at}: beat p99", store, f["beat_p99_ms"], "ms", "", None, "fleet_beat_p99_ms"),
        Row(f"fleet {at}: discovery (peer assignment) p99", store, f["discovery_p99_ms"], "ms", "", None),
        Row(
            f"fleet {at}: bytes per agent per 5 min (sent + received)",
            store,
            (f["bytes_per_agent_per_period"]["sent"] + f["bytes_per_agent_per_period"]["received"]) / 1024,
            "KiB",
            "",
            None,
            "fleet_kib_per_agent_per_5min",
        ),
        Row(
            f"fleet {at}: server + database CPU",
            store,
            f["server_cpu_share"] * 100,
            "% core",
            "",
            None,
            "fleet_server_cpu_percent",
        ),
        Row(f"fleet {at}: server RSS at the end", store, f["rss_mib"][-1][1], "MiB", "", None, "fleet_rss_mib"),
        Row(
            f"fleet {at}: server RSS growth over the second half",
            store,
            growth,
            "%",
            "< 5",
            growth < 5,
            "fleet_rss_growth_percent",
        ),
    ]


def _guarded(name: str, store: str, run: Callable[[], list[Row]], progress: Progress) -> list[Row]:
    """_guarded runs one benchmark; a failure becomes a failed row (and a message), not the end of the run."""
    try:
        return run()
    except Exception as exc:
        progress(f"{name} on {store} FAILED: {type(exc).__name__}: {exc}")
        return [Row(f"{name}: FAILED ({type(exc).__name__}, see stderr)", store, nan, "", "", False)]


def _figure(row: Row) -> str:
    digits = 1
    if row.unit == "ms":
        digits = 3 if abs(row.value) < 1 else 2 if abs(row.value) < 10 else 1
    elif row.unit == "x":
        digits = 2
    return f"{row.value:,.{digits}f} {row.unit}".strip()


def print_table(rows: list[Row]) -> None:
    headers = ("METRIC", "STORE", "FIGURE", "TARGET", "MET")
    cells = [(r.metric, r.store, _figure(r), r.target, {True: "PASS", False: "FAIL", None: ""}[r.ok]) for r in rows]
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
    parser.add_argument("--nodes", default="1000", help="node counts for heartbeat ingest (default 1000)")
    parser.add_argument("--stores", default=None, help="comma-separated of sqlite,postgresql (default both)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated benchmarks to run (default all)")
    parser.add_argument("--fleet-nodes", type=int, default=5000, help="simulated agents of the fleet run (5000)")
    parser.add_argument("--fleet-seconds", type=float, default=600, help="duration of the fleet run (600)")
    args = parser.parse_args(argv)
    progress = _progress_printer(time.monotonic())
    counts = [1000] if args.quick else [int(n) for n in args.nodes.split(",")]
    seconds = 3 if args.quick else args.seconds
    stores = (args.stores or ("sqlite" if args.quick else ",".join(STORES))).split(",")
    if unknown := set(stores) - set(STORES):
        parser.error(f"--stores: unknown {sorted(unknown)}; choose from {', '.join(STORES)}")
    only = set(args.only.split(","))
    if unknown := only - set(BENCHMARKS):
        parser.error(f"--only: unknown {sorted(unknown)}; choose from {', '.join(BENCHMARKS)}")
    _proc.pin(os.getpid(), LOAD_CPU)  # this driver and its clients stay off the server's core
    load_before = os.getloadavg()
    progress(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    runs = 5 if args.quick else 15
    discovery_sizes = (1000, 2000) if args.quick else DISCOVERY_NODES
    fleet_nodes, fleet_seconds = (100, 20.0) if args.quick else (args.fleet_nodes, args.fleet_seconds)
    rows: list[Row] = []
    with _workspace() as (stack, tmp):
        urls = StoreUrls(stack, tmp)
        for store in stores:
            progress(f"== store {store}")
            floors: Floors = {}
            if "heartbeat" in only:
                try:
                    floor_rows, floors = bench_floors(urls, store, seconds, progress)
                    rows += floor_rows
                except Exception as exc:
                    progress(f"floors on {store} FAILED: {type(exc).__name__}: {exc}")
                    rows.append(Row(f"floors: FAILED ({type(exc).__name__}, see stderr)", store, nan, "", "", False))
            benchmarks: dict[str, Callable[[], list[Row]]] = {
                "heartbeat": partial(bench_heartbeats, urls, store, counts, seconds, floors, progress),
                "notready": partial(bench_notready, urls, store, progress),
                "caractrl": partial(bench_caractrl, urls, store, runs, progress),
                "scheduling": partial(bench_scheduling, urls, store, progress),
                "discovery": partial(bench_discovery, urls, store, discovery_sizes, progress),
                "fleet": partial(bench_fleet, urls, store, fleet_nodes, fleet_seconds, progress),
            }
            for name, run in benchmarks.items():
                if name in only:
                    rows += _guarded(name, store, run, progress)
    load_after = os.getloadavg()
    progress(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    document = {**as_json(rows), "load_average": {"before": load_before, "after": load_after}}
    if args.json_file:
        args.json_file.write_text(json.dumps(document, indent=2) + "\n")
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
