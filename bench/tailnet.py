"""Benchmark: how long the path between two lab edges takes to go Direct->DERP and DERP->Direct when toggled.

Run as root: `.venv/bin/python bench/tailnet.py [--toggles 5] [--json]`. It uses the headscale-dev lab
(`$CARA_LAB`, default `cara`), bringing it up if it is down (and then down again at the end, unless someone
else registered as a user meanwhile). Each toggle blocks direct UDP between the pair with `lab block`, then
disco-pings from the first edge every `--interval` seconds until a pong comes back via DERP; then it unblocks
and pings until a pong names a direct endpoint. The time is measured from the moment the block/unblock command
returned (the nftables rule is in force) to the first pong in the new mode, so it includes up to one
`--interval` of polling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mesh import (
    LocalClient,
    PathMode,
    PingType,
    RequestTimeout,
    Via,
    classify_peer,
    find_peer,
    probe_path,
    wait_for_mode,
)
from mesh import (
    Path as MeshPath,
)

LAB_SCRIPT = Path(__file__).resolve().parents[1] / "headscale-dev" / "lab"


def lab_cli(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LAB_SCRIPT), "--name", name, *args], capture_output=True, text=True, check=check)


@contextmanager
def running_lab(name: str, progress: Any) -> Iterator[dict[str, Any]]:
    """running_lab yields the lab's status document, starting the lab first if it is down.

    Like tests/lab/conftest.py, it registers in the lab's users/ directory so `lab down` by others waits for it.
    """
    started = lab_cli(name, "status", "--json", check=False).returncode != 0
    if started:
        print(f"lab {name!r} is down; bringing it up ...", file=progress)
        lab_cli(name, "up")
    doc: dict[str, Any] = json.loads(lab_cli(name, "status", "--json").stdout)
    marker = Path(doc["dir"]) / "users" / str(os.getpid())
    marker.parent.mkdir(exist_ok=True)
    marker.touch()
    try:
        yield doc
    finally:
        marker.unlink(missing_ok=True)
        if started:
            print(f"taking lab {name!r} down again", file=progress)
            lab_cli(name, "down", check=False)


async def wait_passively(
    client: LocalClient, peer: str, ip: str, want: PathMode, args: argparse.Namespace
) -> tuple[float, MeshPath]:
    """wait_passively keeps WireGuard traffic flowing with TSMP pings (which name no path and send no disco) and
    reads the verdict from `status` alone (classify_peer), as an agent would; it returns seconds and the path."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    path = MeshPath(Via.NO_ANSWER)
    while loop.time() - start < args.within:
        try:
            await client.ping(ip, PingType.TSMP, args.ping_timeout)
        except RequestTimeout:
            pass
        path = classify_peer(find_peer(await client.status(), peer))
        if path.mode is want:
            break
        await asyncio.sleep(args.interval)
    return loop.time() - start, path


def summary(samples: list[float]) -> dict[str, float]:
    return {"min": min(samples), "median": statistics.median(samples), "max": max(samples)}


async def measure(args: argparse.Namespace, doc: dict[str, Any], progress: Any) -> dict[str, Any]:
    a, b = args.pair
    hosts = doc["hosts"]
    target = hosts[b]["ip"]
    samples: dict[str, dict[str, list[float]]] = {m: {"direct_to_derp": [], "derp_to_direct": []} for m in args.methods}
    latency: dict[str, list[float]] = {"direct": [], "derp": []}
    async with LocalClient(hosts[a]["socket"]) as client:
        version = (await client.status_without_peers()).version
        first = await probe_path(client, target)
        print(f"{a} -> {b} ({target}) starts {first.via} {first.endpoint or first.derp_region}", file=progress)
        if first.mode is not PathMode.DIRECT:
            raise SystemExit(f"bench: {a} -> {b} is not Direct at the start ({first.via}); is the pair blocked?")
        for method in args.methods:
            for round_ in range(1, args.toggles + 1):
                for action, want, key in (
                    ("block", PathMode.DERP, "direct_to_derp"),
                    ("unblock", PathMode.DIRECT, "derp_to_direct"),
                ):
                    lab_cli(args.lab, action, a, b)
                    try:
                        if method == "active":
                            elapsed, path = await wait_for_mode(
                                client,
                                target,
                                want,
                                within=args.within,
                                interval=args.interval,
                                ping_timeout=args.ping_timeout,
                            )
                        else:
                            elapsed, path = await wait_passively(client, b, target, want, args)
                    except BaseException:
                        lab_cli(args.lab, "unblock", a, b, check=False)
                        raise
                    if path.mode is not want:
                        lab_cli(args.lab, "unblock", a, b, check=False)
                        raise SystemExit(f"bench: {method}: not {want} within {args.within}s of {action} ({path.via})")
                    samples[method][key].append(elapsed)
                    if path.latency_ms is not None:
                        latency["derp" if want is PathMode.DERP else "direct"].append(path.latency_ms)
                    print(
                        f"{method:7} [{round_}/{args.toggles}] {action:7} -> {want.value:6} after {elapsed:6.2f} s "
                        f"(via {path.endpoint or path.derp_region})",
                        file=progress,
                    )
                    # Let the new path settle (trust renewed by heartbeats) before toggling back.
                    await asyncio.sleep(args.settle)
    return {
        "lab": args.lab,
        "pair": [a, b],
        "tailscaled": version,
        "toggles": args.toggles,
        "method": {
            "interval_s": args.interval,
            "ping_timeout_s": args.ping_timeout,
            "settle_s": args.settle,
            "clock": "from the block/unblock command's return to the first verdict in the new mode",
            "active": "disco pings every interval; verdict from the pong (Endpoint or DERP region)",
            "passive": "TSMP pings every interval as traffic; verdict from status CurAddr/PeerRelay/Active+Relay",
        },
        "samples_s": samples,
        "summary_s": {m: {k: summary(v) for k, v in by_key.items()} for m, by_key in samples.items()},
        "rtt_ms": {key: summary(values) for key, values in latency.items() if values},
    }


def table(result: dict[str, Any]) -> str:
    rows = [f"{'method':8} {'transition':16} {'n':>3} {'min s':>8} {'median s':>9} {'max s':>8}"]
    for method, by_key in result["summary_s"].items():
        for key, label in (("direct_to_derp", "Direct -> DERP"), ("derp_to_direct", "DERP -> Direct")):
            s, n = by_key[key], len(result["samples_s"][method][key])
            rows.append(f"{method:8} {label:16} {n:3} {s['min']:8.2f} {s['median']:9.2f} {s['max']:8.2f}")
    for key, s in result["rtt_ms"].items():
        rows.append(f"{'rtt ms':8} {key:16} {'':3} {s['min']:8.3f} {s['median']:9.3f} {s['max']:8.3f}")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--lab", default=os.environ.get("CARA_LAB", "cara"), help="lab name (default $CARA_LAB or cara)"
    )
    parser.add_argument("--pair", nargs=2, default=["edge1", "edge2"], metavar=("A", "B"), help="hosts to toggle")
    parser.add_argument("--toggles", type=int, default=5, help="block/unblock rounds (default 5, at least 5)")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between pings (default 0.25)")
    parser.add_argument("--ping-timeout", type=float, default=0.5, help="seconds to wait for a pong (default 0.5)")
    parser.add_argument("--within", type=float, default=30.0, help="give up a transition after this (default 30)")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds between transitions (default 8)")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=["active", "passive"],
        default=["active", "passive"],
        help="active: verdict from disco pongs; passive: from status while TSMP traffic flows (default both)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: run as root (the lab uses network namespaces)", file=sys.stderr)
        return 1
    if args.toggles < 5:
        print("bench: --toggles must be at least 5", file=sys.stderr)
        return 1
    progress = sys.stderr if args.json else sys.stdout
    with running_lab(args.lab, progress) as doc:
        result = asyncio.run(measure(args, doc, progress))
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
