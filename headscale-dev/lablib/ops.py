"""Operations on a running lab: its status, direct-path blocking, link shaping, exec and logs."""

from __future__ import annotations

import json
import os
from typing import Any, TextIO

from . import system as sy
from .plan import (
    BASE_DOMAIN,
    HEADSCALE_PORT,
    HOST_CUT_NFT,
    HUB_IP,
    Host,
    LabError,
    Plan,
    count_packets,
    parse_rate,
    tbf_burst_bytes,
)
from .state import load_state, plan_of_running, save_state, users


def status(name: str) -> dict[str, Any]:
    """Return the status document `{"hosts": {...}, ...}` of the running lab `name`."""
    plan = plan_of_running(name)
    state = load_state(plan)
    assert state is not None
    return {
        "name": name,
        "dir": plan.dir,
        "hub": {"netns": plan.hub_netns, "ip": HUB_IP, "serverUrl": f"http://{HUB_IP}:{HEADSCALE_PORT}"},
        "baseDomain": BASE_DOMAIN,
        "ready": state.ready,
        "blocked": state.blocked,
        "cut": state.cut,
        "shaped": state.shaped,
        "inUseBy": users(plan),
        "escapes": escapes(plan),
        "hosts": {h.name: state.hosts[h.name] for h in plan.hosts if h.name in state.hosts},  # in plan order
    }


def escapes(plan: Plan) -> dict[str, dict[str, int]]:
    """Return, per host, the packets its netns sent outside the lab (`escape`) and to the dummy resolver (`dns`)."""
    out = {}
    for h in plan.hosts:
        raw = sy.run(sy.ns(h.netns, "nft", "-j", "list", "table", "inet", "labwatch"), check=False)
        out[h.name] = count_packets(json.loads(raw)) if raw.strip() else {}
    return out


def _pair(plan: Plan, a: str, b: str) -> tuple[Host, Host]:
    ha, hb = plan.host(a), plan.host(b)
    if ha == hb:
        raise LabError(f"block/unblock needs two different hosts, got '{a}' twice")
    return ha, hb


def set_blocked(name: str, a: str, b: str, *, blocked: bool, out: TextIO) -> None:
    """Drop (or restore) direct UDP between hosts `a` and `b` in the hub's forward hook, both ways."""
    plan = plan_of_running(name)
    state = load_state(plan)
    assert state is not None
    ha, hb = _pair(plan, a, b)
    elements = f"{{ {ha.underlay} . {hb.underlay}, {hb.underlay} . {ha.underlay} }}"
    pair = sorted([a, b])
    if blocked:
        sy.run(sy.ns(plan.hub_netns, "nft", "add", "element", "inet", "lab", "noudp", elements))
        if pair not in state.blocked:
            state.blocked.append(pair)
    else:
        sy.run(sy.ns(plan.hub_netns, "nft", "delete", "element", "inet", "lab", "noudp", elements), check=False)
        state.blocked = [p for p in state.blocked if p != pair]
    save_state(plan, state)
    print(f"{'blocked' if blocked else 'unblocked'} direct UDP {a} <-> {b}", file=out)


def set_cut(name: str, a: str, b: str, *, cut: bool, out: TextIO) -> None:
    """Cut (or restore) all tailnet traffic between hosts `a` and `b`: a firewall in `a`'s netns on tailscale0 drops
    every packet to or from `b`'s tailnet addresses, direct or relayed alike (see HOST_CUT_NFT)."""
    plan = plan_of_running(name)
    state = load_state(plan)
    assert state is not None
    ha, hb = _pair(plan, a, b)
    peer = state.hosts.get(hb.name, {})
    if not peer.get("ip"):
        raise LabError(f"host '{b}' has no tailnet address yet")
    listed = sy.run(sy.ns(ha.netns, "nft", "list", "tables"), check=False)
    if "inet labcut" not in listed:
        sy.run(sy.ns(ha.netns, "nft", "-f", _write_tmp(plan, f"cut-{ha.name}.nft", HOST_CUT_NFT)))
    verb = "add" if cut else "delete"
    for family, key in (("peers4", "ip"), ("peers6", "ipv6")):
        if peer.get(key):
            sy.run(sy.ns(ha.netns, "nft", verb, "element", "inet", "labcut", family, f"{{ {peer[key]} }}"), check=cut)
    pair = [a, b]
    if cut and pair not in state.cut:
        state.cut.append(pair)
    if not cut:
        state.cut = [p for p in state.cut if p != pair]
    save_state(plan, state)
    print(f"{'cut' if cut else 'restored'} tailnet traffic {a} <-> {b} (firewall in {a} on tailscale0)", file=out)


def _write_tmp(plan: Plan, name: str, text: str) -> str:
    path = os.path.join(plan.dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def shape(name: str, host: str, rate: str, out: TextIO) -> None:
    """Limit `host`'s link to `rate` in both directions with tc tbf (`off` removes the limit)."""
    plan = plan_of_running(name)
    state = load_state(plan)
    assert state is not None
    h = plan.host(host)
    ends = [(h.netns, "eth0"), (plan.hub_netns, h.hub_veth)]  # host egress = upload, hub egress = download
    if rate == "off":
        for netns, dev in ends:
            sy.run(["tc", "-n", netns, "qdisc", "del", "dev", dev, "root"], check=False)
        state.shaped.pop(host, None)
    else:
        burst = tbf_burst_bytes(parse_rate(rate))
        for netns, dev in ends:
            tbf = ["tbf", "rate", rate, "burst", str(burst), "latency", "50ms"]
            sy.run(["tc", "-n", netns, "qdisc", "replace", "dev", dev, "root", *tbf])
        state.shaped[host] = rate
    save_state(plan, state)
    print(f"{host}: link {'unshaped' if rate == 'off' else f'shaped to {rate} each way'}", file=out)


def exec_argv(name: str, host: str, cmd: list[str]) -> tuple[list[str], dict[str, str]]:
    """Return the argv and environment that run `cmd` inside `host`'s netns with TS_SOCKET set."""
    plan = plan_of_running(name)
    env = dict(os.environ)
    env["PATH"] = f"{plan.dir}/bin:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    if host == "hub":
        return sy.ns(plan.hub_netns, *cmd), env
    h = plan.host(host)
    env["TS_SOCKET"] = h.socket
    return sy.ns(h.netns, *cmd), env


def log_path(name: str, daemon: str) -> str:
    """Return the log file of `daemon`: a host name, or `headscale`/`hub`."""
    plan = plan_of_running(name)
    return f"{plan.hub_dir}/headscale.log" if daemon in ("headscale", "hub") else plan.host(daemon).log
