"""Benchmark of cara-agent in the lab: its throughput figure vs iperf3 on the same shaped path, its RSS and CPU.

Run as root, after scripts/package (the footprint runs the release):
`.venv/bin/python -m bench.agent [--rates 100mbit,1gbit] [--repeats 3] [--seconds 90] [--json]`.
It uses the headscale-dev lab (`$CARA_LAB`, default `cara`; brought up if down and then taken down again), runs
cara-server in `control`, and for each rate shapes `edge1`'s link with `lab shape` (tc tbf), then measures the
same tailnet path edge1 <-> control with the agent's own meter (4 streams, 3 s per direction, ramp-up discarded)
and with iperf3 (4 streams, 1 s omitted, 4 s counted). Download is control -> edge (iperf3 -R), upload is
edge -> control. Then it runs a real agent in every edge at 10 s beats (`edge1` and `edge3` are `edge2`'s fellows
to probe) and samples the RSS and CPU of `edge2`'s: after its start-up throughput test, and again with a Project
running on it (the lab's podman). The agents run as deployed (docs/deploy.md): the release of scripts/package installed
with Debian's own Python from the wheelhouse into a fresh venv, started with their unit's command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import _proc
from bench._server import ROOT

sys.path.insert(0, str(ROOT / "headscale-dev"))

from lablib.client import Lab, using_lab
from lablib.harness import ControlPlane, node, running_control_plane, start_agent, wait_until
from lablib.release import NoArtifacts, install, release_wheel

PROBE_HOST = "edge1"
AGENT_HOST = "edge2"
#: Agents that run beside AGENT_HOST's during the footprint run (cordoned), so that it has fellows to probe.
FELLOWS = ("edge1", "edge3")
PROJECT = "bench-footprint"
#: The tailnet policy (deploy/headscale/policy.hujson) lets edges reach the control host on 8080 only: iperf3 listens
#: there on the control host's tailnet IPv6 address while cara-server listens on its IPv4 one (same tunnel, same path).
IPERF_PORT = 8080
TARGET_DIFF_PERCENT = 5.0
TARGET_RSS_MIB = 40.0
TARGET_CPU_PERCENT = 0.5


def _progress(started: float) -> Callable[[str], None]:
    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    return say


async def _measure_once(url: str, streams: int, duration: float) -> dict[str, float]:
    """_measure_once is the agent's own measurement (agent.throughput.ServerMeter), as run inside an edge."""
    from agent.throughput import ServerMeter

    meter = ServerMeter(base_url=url, streams=streams, duration=duration, now=lambda: datetime.now(UTC))
    result = await meter.measure()
    return {"download": result.download_bps, "upload": result.upload_bps, "bytes": result.bytes_used}


def _agent_measure(lab: Lab, url: str) -> dict[str, float]:
    """_agent_measure runs one agent measurement in PROBE_HOST (a subprocess in its netns) and returns bits/s."""
    out = lab.run(PROBE_HOST, sys.executable, "-m", "bench.agent", "--measure-only", url, timeout=60).stdout
    return dict(json.loads(out))


def _iperf(lab: Lab, server_ip: str, reverse: bool) -> float:
    """_iperf runs iperf3 from PROBE_HOST to control over the tailnet and returns the receiver's bits/s."""
    server = lab.popen(
        "control",
        "iperf3",
        "-s",
        "-1",
        "-B",
        server_ip,
        "-p",
        str(IPERF_PORT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        argv = ["iperf3", "-c", server_ip, "-p", str(IPERF_PORT), "-P", "4", "-O", "1", "-t", "4", "-J"]
        for _ in range(50):  # the server needs a moment to listen
            result = lab.run(PROBE_HOST, *argv, *(["-R"] if reverse else []), check=False, timeout=30)
            doc = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
            if result.returncode == 0 and "sum_received" in doc.get("end", {}):
                return float(doc["end"]["sum_received"]["bits_per_second"])
            time.sleep(0.1)
        raise RuntimeError(f"iperf3 failed: {result.stdout[-500:]} {result.stderr[-500:]}")
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()


def bench_throughput(
    lab: Lab, url: str, server_ip: str, rates: list[str], repeats: int, say: Callable[[str], None]
) -> list[dict[str, Any]]:
    rows = []
    for rate in rates:
        lab.shape(PROBE_HOST, rate)
        try:
            say(f"{PROBE_HOST} shaped to {rate}: agent meter x{repeats}")
            agent = [_agent_measure(lab, url) for _ in range(repeats)]
            say(f"{PROBE_HOST} shaped to {rate}: iperf3 x{repeats} each way")
            iperf_down = [_iperf(lab, server_ip, reverse=True) for _ in range(repeats)]
            iperf_up = [_iperf(lab, server_ip, reverse=False) for _ in range(repeats)]
        finally:
            lab.shape(PROBE_HOST, "off")
        for direction, ours, theirs in (
            ("download", [a["download"] for a in agent], iperf_down),
            ("upload", [a["upload"] for a in agent], iperf_up),
        ):
            a, i = statistics.median(ours), statistics.median(theirs)
            diff = (a - i) / i * 100
            rows.append(
                {
                    "rate": rate,
                    "direction": direction,
                    "agent_mbps": round(a / 1e6, 1),
                    "iperf3_mbps": round(i / 1e6, 1),
                    "diff_percent": round(diff, 1),
                    "ok": abs(diff) <= TARGET_DIFF_PERCENT,
                    "agent_samples_mbps": [round(x / 1e6, 1) for x in ours],
                    "iperf3_samples_mbps": [round(x / 1e6, 1) for x in theirs],
                    "agent_bytes_used": int(statistics.median(x["bytes"] for x in agent)),
                }
            )
            say(f"{rate} {direction}: agent {a / 1e6:.1f} Mbps, iperf3 {i / 1e6:.1f} Mbps ({diff:+.1f} %)")
    return rows


def _sample(pid: int, seconds: float) -> dict[str, Any]:
    """_sample reads pid's RSS every second for `seconds` and its CPU over the whole span."""
    cpu0, t0 = _proc.cpu_seconds(pid), time.monotonic()
    rss = []
    while time.monotonic() - t0 < seconds:
        rss.append(_proc.rss_mib(pid))
        time.sleep(1.0)
    cpu = (_proc.cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
    return {
        "rss_mib_max": round(max(rss), 1),
        "rss_mib_median": round(statistics.median(rss), 1),
        "cpu_percent_of_core": round(cpu, 3),
        "seconds": seconds,
        "rss_mib_where": _proc.rss_breakdown_mib(pid),
        "rss_ok": max(rss) <= TARGET_RSS_MIB,
        "cpu_ok": cpu <= TARGET_CPU_PERCENT,
    }


def _install_release(prefix: Path) -> Path:
    """_install_release installs this version's release (artifacts/ of scripts/package) into a venv of the system
    Python at `prefix`, as docs/deploy.md does, and returns its bin directory: a checkout's editable install runs
    another interpreter, an import hook and modules compiled at start, about 1.5 MiB more than the deployed agent."""
    wheel = release_wheel("dist")
    install(prefix, wheel.name.split("-")[1])
    return prefix / "bin"


def _cordon(plane: ControlPlane, name: str) -> None:
    """_cordon marks Node `name` unschedulable (as `caractrl cordon` does), so the Project can only go to AGENT_HOST."""
    doc, _ = wait_until(f"{name} registered", lambda: node(plane, name), 60)
    doc["spec"]["unschedulable"] = True
    code, body = plane.call("operator", "PUT", f"/api/v1/nodes/{name}", doc, timeout=5)
    if code != 200:
        raise RuntimeError(f"cordon {name}: {code} {body}")


def _project_phase(plane: ControlPlane, name: str) -> str | None:
    code, doc = plane.call("operator", "GET", f"/api/v1/projects/{name}", timeout=5)
    return str(doc["status"]["phase"]) if code == 200 and isinstance(doc, dict) and doc.get("status") else None


def bench_footprint(
    lab: Lab, plane: ControlPlane, seconds: float, workdir: Path, say: Callable[[str], None]
) -> dict[str, Any]:
    """bench_footprint runs an agent in every edge at 10 s beats (AGENT_HOST's fellows, so that it has peers to
    probe), AGENT_HOST's with the lab's podman, and samples AGENT_HOST's RSS and CPU once its start-up
    measurement is done; then again with a Project (one busybox httpd) running on it."""
    say("container runtime: podman in every edge (`lab runtime up`)")
    lab.cli("runtime", "up", timeout=300)
    runtime = json.loads(lab.cli("runtime", "status").stdout)
    say("installing the release into a venv of the system Python (docs/deploy.md)")
    bin_dir = _install_release(workdir / "venv")
    beats = {"HEARTBEAT_INTERVAL": "10s"}
    fellows = [start_agent(lab, host, workdir, env=beats, bin_dir=bin_dir) for host in FELLOWS]
    agent = start_agent(
        lab,
        AGENT_HOST,
        workdir,
        env={**beats, "CONTAINER_RUNTIME_SOCKET": runtime["sockets"][AGENT_HOST]},
        bin_dir=bin_dir,
    )
    try:
        for host in FELLOWS:
            _cordon(plane, host)
        say(f"agent in {AGENT_HOST}: waiting for registration and its first throughput test")
        wait_until(
            "first measurement",
            lambda: (((node(plane, AGENT_HOST) or {}).get("status") or {}).get("network") or {}).get("throughput"),
            90,
        )
        pid = agent.process.pid
        say(f"sampling pid {pid} for {seconds:g}s at 10 s beats, probing {', '.join(FELLOWS)}")
        idle = _sample(pid, seconds)
        say(f"RSS max {idle['rss_mib_max']} MiB, CPU {idle['cpu_percent_of_core']} %; applying Project {PROJECT}")
        project = {
            "apiVersion": "caravanserai/v1",
            "kind": "Project",
            "metadata": {"name": PROJECT},
            "spec": {"services": [{"name": "web", "image": runtime["image"]}]},
        }
        code, body = plane.call("operator", "POST", "/api/v1/projects", project, timeout=5)
        if code != 201:
            raise RuntimeError(f"apply {PROJECT}: {code} {body}")
        wait_until(f"{PROJECT} Running", lambda: _project_phase(plane, PROJECT) == "Running", 60)
        say(f"sampling pid {pid} for {seconds:g}s with {PROJECT} running")
        running = _sample(pid, seconds)
        plane.call("operator", "DELETE", f"/api/v1/projects/{PROJECT}", timeout=5)
        wait_until(f"{PROJECT} gone", lambda: _project_phase(plane, PROJECT) is None, 60)
        return {"idle": idle, "project": running}
    finally:
        for process in (agent, *fellows):
            process.stop()


def _print_table(result: dict[str, Any]) -> None:
    target = f"target ±{TARGET_DIFF_PERCENT:g} %"
    print(f"{'rate':<8} {'direction':<9} {'agent Mbps':>10} {'iperf3 Mbps':>11} {'diff %':>7}  {target}")
    for row in result["throughput"]:
        mark = "ok" if row["ok"] else "MISS"
        figures = f"{row['agent_mbps']:>10.1f} {row['iperf3_mbps']:>11.1f} {row['diff_percent']:>+7.1f}"
        print(f"{row['rate']:<8} {row['direction']:<9} {figures}  {mark}")
    for phase, label in (("idle", "beats, probing, throughput"), ("project", "and a running Project")):
        fp = result["footprint"].get(phase)
        if not fp:
            continue
        rss_mark, cpu_mark = ("ok" if fp["rss_ok"] else "MISS"), ("ok" if fp["cpu_ok"] else "MISS")
        rss = f"agent RSS ({label}) max {fp['rss_mib_max']} MiB (median {fp['rss_mib_median']})"
        print(f"{rss}, target <= {TARGET_RSS_MIB:g} MiB: {rss_mark}")
        print("  where (MiB): " + ", ".join(f"{name} {mib:g}" for name, mib in fp["rss_mib_where"].items()))
        cpu = f"agent CPU ({label}) {fp['cpu_percent_of_core']} % of a core over {fp['seconds']:g}s at 10 s beats"
        print(f"{cpu}, target <= {TARGET_CPU_PERCENT} %: {cpu_mark}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.agent", description=__doc__.splitlines()[0])
    p.add_argument("--lab", default=os.environ.get("CARA_LAB", "cara"))
    p.add_argument("--rates", default="100mbit,1gbit", help="comma-separated tc rates (default %(default)s)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=90.0, help="how long to sample RSS and CPU (default %(default)s)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--measure-only", metavar="URL", help=argparse.SUPPRESS)  # internal: one measurement, JSON out
    args = p.parse_args(argv)
    if args.measure_only:
        print(json.dumps(asyncio.run(_measure_once(args.measure_only, 4, 3.0))))
        return 0

    if args.seconds > 0:
        try:
            release_wheel("dist")  # before the lab: the footprint phase needs the release
        except NoArtifacts as exc:
            print(f"bench.agent: {exc}", file=sys.stderr)
            return 2
    say = _progress(time.monotonic())
    with using_lab(args.lab) as lab, tempfile.TemporaryDirectory(prefix="cara-bench-agent-") as tmp:
        say(f"lab {args.lab!r} is up; starting cara-server in control")
        listen = f"{lab.hosts['control']['ip']}:8080"
        with running_control_plane(lab, Path(tmp) / "plane", "--listen", listen, heartbeat_interval="10s") as plane:
            server_ip = lab.hosts["control"]["ipv6"]
            rates = [rate for rate in args.rates.split(",") if rate]
            rows = bench_throughput(lab, plane.url, server_ip, rates, args.repeats, say)
            footprint = bench_footprint(lab, plane, args.seconds, Path(tmp) / "agents", say) if args.seconds > 0 else {}
    result = {"throughput": rows, "footprint": footprint}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
