"""Tests of headscale-dev: pure lab helpers (fast) and the real lab against reality (marked `lab`, root)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab.conftest import LAB_SCRIPT, Lab, using_lab

sys.path.insert(0, str(LAB_SCRIPT.parent))

from lablib import lifecycle, plan

EDGE_NAMES = ["edge1", "edge2", "edge3"]
HOSTNAMES = {"control": "cara-server", "operator": "operator"} | {e: e for e in EDGE_NAMES}
TAGS = {"control": ["tag:cara-registry", "tag:cara-server"], "operator": None} | {
    e: ["tag:cara-node"] for e in EDGE_NAMES
}


# ---- pure helpers (no root, no lab) ---------------------------------------------------------------------------------


def test_plan_gives_every_host_its_own_slash24_and_short_names() -> None:
    p = plan.make_plan("cara", plan.MAX_EDGES)
    nets = [ipaddress.ip_network(f"{h.underlay}/24", strict=False) for h in p.hosts]
    assert len(set(nets)) == len(p.hosts) == plan.MAX_EDGES + 3
    assert ipaddress.ip_address(plan.HUB_IP) not in nets[0]
    assert all(len(h.hub_veth) <= 15 and len(h.netns) <= 20 for h in p.hosts)
    assert max(len(h.socket) for h in p.hosts) < 100  # unix socket paths stop at ~107 bytes
    assert [h.name for h in p.hosts[:3]] == ["control", "operator", "edge1"]
    assert p.host("control").hostname == "cara-server" and p.host("edge1").netns == "cara-edge1"


def test_plan_rejects_unknown_host_bad_names_and_counts() -> None:
    p = plan.make_plan("cara", 2)
    with pytest.raises(plan.LabError, match=r"unknown host 'edge3'.*control, operator, edge1, edge2"):
        p.host("edge3")
    for bad in ("Cara", "1lab", "a-b", "waytoolongname"):
        with pytest.raises(plan.LabError, match="bad lab name"):
            plan.make_plan(bad)
    with pytest.raises(plan.LabError, match="--edges"):
        plan.make_plan("cara", -1)


def test_headscale_config_is_hermetic() -> None:
    cfg = plan.headscale_config(plan.make_plan("cara"))
    host = cfg["server_url"].split("//")[1].split(":")[0]
    assert ipaddress.ip_address(host) == ipaddress.ip_address(plan.HUB_IP)  # IP literal: no DNS lookups
    assert cfg["derp"]["urls"] == [] and cfg["derp"]["auto_update_enabled"] is False
    assert cfg["derp"]["server"]["enabled"] is True and cfg["derp"]["server"]["ipv4"] == plan.HUB_IP
    assert cfg["disable_check_updates"] is True and cfg["logtail"]["enabled"] is False
    assert cfg["prefixes"]["allocation"] == "sequential" and cfg["dns"]["base_domain"] == "tailnet.test"
    assert all(v.startswith("/run/cara-lab/") for k, v in _leaves(cfg) if k.endswith("path") and v)
    env = plan.tailscaled_env("/bin-dir", "/run/cara-lab/edge1")
    assert {"TS_DISABLE_PORTMAPPER", "TS_PANIC_IF_HIT_MAIN_CONTROL", "TS_ASSUME_NETWORK_UP_FOR_TEST"} <= set(env)
    assert env["TS_LOGS_DIR"] == "/run/cara-lab/edge1" and env["PATH"].startswith("/bin-dir:")


def _hujson(text: str) -> Any:
    """The policy as JSON: HuJSON's comments and trailing commas removed (the file has no // inside strings)."""
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", re.sub(r"//[^\n]*", "", text)))


def test_the_lab_runs_the_deployment_policy_which_allows_only_the_caravanserai_flows() -> None:
    assert plan.POLICY_FILE == Path(__file__).resolve().parents[2] / "deploy" / "headscale" / "policy.hujson"
    assert plan.policy() == plan.POLICY_FILE.read_text()
    pol = _hujson(plan.policy())
    operators = "group:cara-operators"
    assert pol["groups"] == {operators: [f"{plan.OPERATOR_USER}@"]}
    assert set(pol["tagOwners"]) == {"tag:cara-server", "tag:cara-node", "tag:cara-scraper", "tag:cara-registry"}
    rules = {(tuple(r["src"]), tuple(r["dst"])) for r in pol["acls"]}
    assert all(r["action"] == "accept" for r in pol["acls"])
    assert rules == {
        (("tag:cara-node",), ("tag:cara-server:8080",)),
        ((operators,), ("tag:cara-server:8080", "tag:cara-node:9090,8081")),
        (("tag:cara-node",), ("tag:cara-node:9090",)),
        (("tag:cara-node",), ("tag:cara-registry:5000",)),
        (("tag:cara-scraper",), ("tag:cara-server:8080", "tag:cara-node:9090")),
    }
    assert "*" not in json.dumps(pol)


@pytest.mark.parametrize(
    ("rate", "bits"), [("100mbit", 100_000_000), ("512kbit", 512_000), ("1gbit", 10**9), ("1.5mbit", 1_500_000)]
)
def test_parse_rate(rate: str, bits: int) -> None:
    assert plan.parse_rate(rate) == bits


@pytest.mark.parametrize("rate", ["fast", "100", "10mbps", "0mbit", ""])
def test_parse_rate_rejects(rate: str) -> None:
    with pytest.raises(plan.LabError, match="bad rate"):
        plan.parse_rate(rate)


def test_tbf_burst_holds_10ms_with_a_floor() -> None:
    assert plan.tbf_burst_bytes(1_000_000_000) == 1_250_000
    assert plan.tbf_burst_bytes(1_000_000) == 16_000


def test_state_round_trips_and_rejects_garbage() -> None:
    s = plan.State(name="cara", edges=1, pids={"headscale": 7}, netns=["cara-hub"], blocked=[["edge1", "edge2"]])
    assert plan.State.from_json(s.to_json()) == s
    for garbage in ("not json", '{"name": "cara"}', '{"name": "x", "edges": 1, "extra": 1}'):
        with pytest.raises(plan.LabError, match="corrupt lab state"):
            plan.State.from_json(garbage)


def test_count_packets_sums_counters_by_comment() -> None:
    def rule(comment: str, packets: int) -> dict[str, Any]:
        return {"rule": {"comment": comment, "expr": [{"match": {}}, {"counter": {"packets": packets, "bytes": 1}}]}}

    doc = {"nftables": [{"metainfo": {}}, {"table": {}}, rule("escape", 2), rule("escape", 3), rule("dns", 0)]}
    assert plan.count_packets(doc) == {"escape": 5, "dns": 0}
    assert "hook output" in plan.HOST_WATCH_NFT and "fwd" not in plan.HUB_NFT


def test_preflight_names_missing_tun_and_go(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(os.path, "exists", lambda p: False)
    with pytest.raises(plan.LabError, match="/dev/net/tun is missing"):
        lifecycle.preflight(sys.stdout)
    monkeypatch.setattr(os.path, "exists", lambda p: p == "/dev/net/tun")
    monkeypatch.setattr(lifecycle, "bin_dir", lambda: tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(plan.LabError, match="Go is missing"):
        lifecycle.preflight(sys.stdout)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(plan.LabError, match="must run as root"):
        lifecycle.preflight(sys.stdout)


def _leaves(d: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


# ---- the shared lab -------------------------------------------------------------------------------------------------


@pytest.mark.lab
def test_every_host_is_running_with_its_addresses_names_and_tags(lab: Lab) -> None:
    assert set(lab.hosts) >= {"control", "operator", *EDGE_NAMES}
    for name, expected_hostname in HOSTNAMES.items():
        h = lab.hosts[name]
        st = lab.status(name)
        assert st["BackendState"] == "Running"
        assert st["TailscaleIPs"] == [h["ip"], h["ipv6"]]
        assert ipaddress.ip_address(h["ip"]) in ipaddress.ip_network("100.64.0.0/10")
        assert h["dnsName"] == st["Self"]["DNSName"].rstrip(".") == f"{expected_hostname}.tailnet.test"
        assert sorted(st["Self"].get("Tags") or []) == (TAGS[name] or [])
        assert h["netns"] == f"{lab.name}-{name}" and h["socket"].endswith(f"/{name}/ts.sock")
        addrs = json.loads(lab.run(name, "ip", "-j", "-4", "addr", "show", "dev", "eth0").stdout)
        assert h["underlay"] in [a["local"] for a in addrs[0]["addr_info"]]


@pytest.mark.lab
def test_every_host_sees_all_peers_online_via_the_embedded_derp(lab: Lab) -> None:
    members = [n for n in lab.hosts if n != "stranger"]
    for name in lab.hosts:
        st = lab.status(name)
        peers = {p["DNSName"].rstrip("."): p for p in (st["Peer"] or {}).values()}
        # The policy: every member sees every other; the stranger, in no rule, sees nobody and nobody sees it.
        want = {lab.hosts[n]["dnsName"] for n in members if n != name} if name in members else set()
        assert set(peers) == want
        assert all(p["Online"] and p["Relay"] == "headscale" for p in peers.values())
        assert st["Self"]["Relay"] == "headscale"


@pytest.mark.lab
def test_whois_tells_the_roles_apart(lab: Lab) -> None:
    def whois(ip: str) -> dict[str, Any]:
        return dict(json.loads(lab.run("control", "tailscale", "whois", "--json", ip).stdout))

    ops = whois(lab.hosts["operator"]["ip"])
    assert ops["UserProfile"]["LoginName"] == "ops" and not ops["Node"].get("Tags")
    edge = whois(lab.hosts["edge1"]["ip"])
    assert edge["Node"]["Tags"] == ["tag:cara-node"] and edge["UserProfile"]["LoginName"] == "tagged-devices"
    server = lab.run("edge1", "tailscale", "whois", "--json", lab.hosts["control"]["ip"]).stdout
    assert sorted(json.loads(server)["Node"]["Tags"]) == ["tag:cara-registry", "tag:cara-server"]


@pytest.mark.lab
def test_no_lab_namespace_has_an_interface_or_route_toward_the_root_namespace(lab: Lab) -> None:
    lab_netns = {lab.doc["hub"]["netns"], *(h["netns"] for h in lab.hosts.values())}
    for ns in lab_netns:
        links = json.loads(_sh("ip", "-n", ns, "-j", "-d", "link", "show"))
        kinds = {link["ifname"]: link.get("linkinfo", {}).get("info_kind", "") for link in links}
        assert set(kinds.values()) <= {"", "veth", "tun"}, kinds  # "" is lo
        # Every veth peer lives in a named lab namespace; a peer in the root netns would show up without a name.
        ids = json.loads(_sh("ip", "-n", ns, "-j", "netns", "list-id") or "[]")
        assert {i.get("name") for i in ids} <= lab_netns, ids
    hub_routes = json.loads(_sh("ip", "-n", lab.doc["hub"]["netns"], "-j", "route", "show"))
    assert all(r["dst"] != "default" for r in hub_routes)  # the hub is a dead end: nothing leaves the lab
    root = _sh("ip", "-j", "link", "show")
    assert not [link for link in json.loads(root) if "link_netnsid" in link and link["ifname"].startswith("v-")]


@pytest.mark.lab
def test_lab_daemons_run_only_inside_lab_namespaces(lab: Lab) -> None:
    root_ns = os.stat("/proc/self/ns/net").st_ino  # the test process runs in the root netns
    lab_inodes = {os.stat(f"/run/netns/{n}").st_ino for n in os.listdir("/run/netns")}
    daemons = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _exe(p).startswith(str(plan.bin_dir()))]
    assert len(daemons) >= len(lab.hosts) + 1
    for p in daemons:
        ino = os.stat(p / "ns" / "net").st_ino
        assert ino != root_ns and ino in lab_inodes, f"{p.name} {_exe(p)} runs outside the lab namespaces"


@pytest.mark.lab
def test_exec_on_an_unknown_host_fails_with_a_message(lab: Lab) -> None:
    p = lab.cli("exec", "edge99", "--", "true", check=False)
    assert p.returncode == 1 and "unknown host 'edge99'" in p.stderr and "control" in p.stderr


@pytest.mark.lab
def test_exec_runs_inside_the_host_with_ts_socket(lab: Lab) -> None:
    p = lab.cli("exec", "edge2", "--", "sh", "-c", 'echo "$TS_SOCKET"; tailscale ip -4')
    assert p.stdout.split() == [lab.hosts["edge2"]["socket"], lab.hosts["edge2"]["ip"]]


@pytest.mark.lab
def test_popen_runs_a_server_reachable_over_the_tailnet(lab: Lab) -> None:
    # Port 8080: the only port of the control host the policy opens to the edges.
    ip = lab.hosts["control"]["ip"]
    server = lab.popen("control", "iperf3", "-s", "-1", "-B", ip, "-p", "8080", stdout=subprocess.DEVNULL)
    try:
        _until(lambda: lab.run("control", "ss", "-ltn").stdout.count(":8080") > 0, 10, "iperf3 listening")
        out = lab.run("edge3", "iperf3", "-c", ip, "-p", "8080", "-t", "1", "-J").stdout
        assert json.loads(out)["end"]["sum_received"]["bytes"] > 0
    finally:
        server.kill()
        server.wait()


# ---- a private lab for disruptive tests: block/unblock, idempotency, errors, down ----------------------------------

PRIVATE = "caratest"


@pytest.fixture(scope="module")
def private_lab() -> Iterator[Lab]:
    with using_lab(PRIVATE, edges=2) as running:
        yield running


def _ping_path(lab: Lab, a: str, b: str) -> str:
    ping = ("tailscale", "ping", "-c", "1", "--until-direct=false", "--timeout=2s", lab.hosts[b]["ip"])
    p = lab.run(a, *ping, check=False)
    return p.stdout + p.stderr


@pytest.mark.lab
@pytest.mark.slow
def test_block_falls_back_to_derp_and_unblock_returns_to_direct(private_lab: Lab) -> None:
    lab, direct = private_lab, f"via {private_lab.hosts['edge2']['underlay']}:41641"
    _until(lambda: direct in _ping_path(lab, "edge1", "edge2"), 20, "a direct path before blocking")
    lab.block("edge1", "edge2")
    try:
        lab.refresh()
        assert lab.doc["blocked"] == [["edge1", "edge2"]]
        t0 = time.monotonic()
        _until(lambda: "via DERP(headscale)" in _ping_path(lab, "edge1", "edge2"), 20, "DERP after block")
        print(f"direct -> DERP after {time.monotonic() - t0:.1f}s")
        # Other pairs keep their direct path.
        _until(lambda: "41641" in _ping_path(lab, "edge1", "control"), 20, "edge1 -> control still direct")
    finally:
        lab.unblock("edge1", "edge2")
    t0 = time.monotonic()
    _until(lambda: direct in _ping_path(lab, "edge1", "edge2"), 20, "direct after unblock")
    print(f"DERP -> direct after {time.monotonic() - t0:.1f}s")
    lab.refresh()
    assert lab.doc["blocked"] == []


@pytest.mark.lab
def test_no_host_sent_a_packet_or_dns_query_outside_the_lab(private_lab: Lab) -> None:
    private_lab.refresh()
    escapes = private_lab.doc["escapes"]
    assert set(escapes) == set(private_lab.hosts)
    assert all(c == {"escape": 0, "dns": 0} for c in escapes.values()), escapes  # counted since before tailscaled
    # The counters do count: a datagram to TEST-NET-1 (it dies at the hub, which has no route out) shows up.
    send = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('192.0.2.1', 9))"
    private_lab.run("edge2", "python3", "-c", send)
    private_lab.refresh()
    assert private_lab.doc["escapes"]["edge2"]["escape"] == 1


@pytest.mark.lab
def test_shape_sets_and_clears_tbf_on_both_ends(private_lab: Lab) -> None:
    lab = private_lab
    lab.shape("edge1", "50mbit")
    try:
        assert "tbf" in _sh("tc", "-n", lab.hosts["edge1"]["netns"], "qdisc", "show", "dev", "eth0")
        assert "50Mbit" in _sh("tc", "-n", lab.doc["hub"]["netns"], "qdisc", "show", "dev", "v-edge1")
    finally:
        lab.shape("edge1", "off")
    assert "tbf" not in _sh("tc", "-n", lab.hosts["edge1"]["netns"], "qdisc", "show", "dev", "eth0")


@pytest.mark.lab
def test_up_again_is_idempotent_only_for_the_same_shape(private_lab: Lab) -> None:
    same = private_lab.cli("up", "--edges", "2")
    assert "already up and healthy" in same.stdout
    other = private_lab.cli("up", "--edges", "3", check=False)
    assert other.returncode == 1 and "already up" in other.stderr and "lab down" in other.stderr


@pytest.mark.lab
def test_block_with_an_unknown_or_same_host_fails(private_lab: Lab) -> None:
    unknown = private_lab.cli("block", "edge1", "edge7", check=False)
    assert unknown.returncode == 1 and "unknown host 'edge7'" in unknown.stderr
    same = private_lab.cli("block", "edge1", "edge1", check=False)
    assert same.returncode == 1 and "two different hosts" in same.stderr


@pytest.mark.lab
def test_down_refuses_while_a_test_run_uses_the_lab(private_lab: Lab) -> None:
    p = private_lab.cli("down", check=False)
    assert p.returncode == 1 and f"in use by test run(s) [{os.getpid()}]" in p.stderr
    assert private_lab.cli("status", "--json").returncode == 0


@pytest.mark.lab
def test_commands_as_non_root_fail_with_one_line() -> None:
    p = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, str(LAB_SCRIPT), "up"],
        capture_output=True, text=True, timeout=30, cwd="/",
    )  # fmt: skip
    assert p.returncode == 1 and p.stderr.strip().count("\n") == 0 and "must run as root" in p.stderr


@pytest.mark.lab
def test_up_refuses_namespaces_it_did_not_record_and_creates_nothing() -> None:
    _sh("ip", "netns", "add", "caraleft-hub")
    try:
        p = subprocess.run([str(LAB_SCRIPT), "--name", "caraleft", "up"], capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and "caraleft-hub not recorded by any lab state" in p.stderr
        assert [n for n in _sh("ip", "netns", "list").split() if n.startswith("caraleft-")] == ["caraleft-hub"]
        assert not os.path.exists("/run/caraleft-lab") and not os.path.exists("/etc/netns/caraleft-hub")
    finally:
        _sh("ip", "netns", "del", "caraleft-hub")


@pytest.mark.lab
def test_up_then_down_leaves_nothing_and_never_touches_resolv_conf() -> None:
    name, before, var_lib = "caradown", _digest("/etc/resolv.conf"), _snapshot("/var/lib/tailscale")
    base = [str(LAB_SCRIPT), "--name", name]
    up = subprocess.run([*base, "up", "--edges", "1"], capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr
    assert "edge1 joined (100.64.0.3)" in up.stdout and "lab 'caradown' up" in up.stdout
    state = json.loads(Path(f"/run/{name}-lab/state.json").read_text())
    assert _digest("/etc/resolv.conf") == before
    down = subprocess.run([*base, "down"], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert not [n for n in _sh("ip", "netns", "list").split() if n.startswith(f"{name}-")]
    assert [f for f in state["files"] if f != "/etc/netns" and os.path.exists(f)] == []  # /etc/netns may be shared
    assert not [i for i in json.loads(_sh("ip", "-j", "link", "show")) if i["ifname"].startswith("v-")]
    assert not os.path.exists(f"/run/{name}-lab")
    assert not [pid for pid in state["pids"].values() if Path(f"/proc/{pid}").exists() and _exe_pid(pid)]
    assert _digest("/etc/resolv.conf") == before
    assert _snapshot("/var/lib/tailscale") == var_lib  # tailscaled's default state/log dir is left alone
    assert not Path("/etc/resolv.pre-tailscale-backup.conf").exists()
    again = subprocess.run([*base, "down"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "not up" in again.stdout
    status = subprocess.run([*base, "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 1 and "not up" in status.stderr


# ---- helpers --------------------------------------------------------------------------------------------------------


def _sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _snapshot(d: str) -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in Path(d).iterdir()} if os.path.isdir(d) else {}


def _exe(p: Path) -> str:
    try:
        return os.readlink(p / "exe")
    except OSError:
        return ""


def _exe_pid(pid: int) -> bool:
    return _exe(Path(f"/proc/{pid}")).startswith(str(plan.bin_dir()))


def _until(probe: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
