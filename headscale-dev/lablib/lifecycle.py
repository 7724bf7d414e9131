"""Bring a lab up, describe it, toggle its links and take it down again, recording every step in state.json."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from . import containers
from . import system as sy
from .plan import (
    CONTROL_TAGS,
    DERP_REGION_CODE,
    HEADSCALE_PORT,
    HOST_WATCH_NFT,
    HUB_IP,
    HUB_NFT,
    NODE_TAG,
    OPERATOR_USER,
    STRANGER_USER,
    TAILSCALED_PORT,
    Host,
    LabError,
    Plan,
    State,
    bin_dir,
    headscale_config,
    make_plan,
    policy,
    tailscaled_env,
)
from .state import load_state, plan_of_running, save_state, users

INSTALL = Path(__file__).resolve().parent.parent / "install"
UP_TIMEOUT = 60.0  # seconds for each wait in `up`; a 2-core machine settles 5 hosts in well under 10 s


class Progress:
    """Prints one `[  3.2s] message` line per step, timed from its creation."""

    def __init__(self, out: TextIO) -> None:
        self._t0 = time.monotonic()
        self._out = out

    def elapsed(self) -> float:
        """Return the seconds since the first step began."""
        return time.monotonic() - self._t0

    def __call__(self, msg: str) -> None:
        print(f"[{self.elapsed():5.1f}s] {msg}", file=self._out, flush=True)


# ---- preflight ----------------------------------------------------------------------------------------------------


def preflight(out: TextIO) -> Path:
    """Check root, TUN and tools, build the binaries if missing, and return the binary directory."""
    if os.geteuid() != 0:
        raise LabError("must run as root (network namespaces, TUN devices): use sudo headscale-dev/lab ...")
    if not os.path.exists("/dev/net/tun"):
        raise LabError("/dev/net/tun is missing: load the tun module (modprobe tun) or run on a host with TUN")
    bins = bin_dir()
    missing_bins = [b for b in ("headscale", "tailscale", "tailscaled") if not (bins / b).exists()]
    missing = missing_bins + [t for t in ("nft", "ip", "tc") if not shutil.which(t)]
    has_go = bool(shutil.which("go")) or os.path.exists("/usr/local/go/bin/go")
    if missing_bins and not has_go:
        raise LabError(f"Go is missing and the lab binaries are not built in {bins}: install Go >= 1.26, then rerun")
    if missing:
        print(f"missing {', '.join(missing)}: running {INSTALL}", file=out, flush=True)
        if subprocess.run([str(INSTALL)], stdout=out, stderr=out).returncode != 0:
            raise LabError(f"{INSTALL} failed (see its output above)")
    return bins


# ---- up -----------------------------------------------------------------------------------------------------------


def up(name: str, edges: int, out: TextIO) -> None:
    """Create the lab and wait until every host is Running with all peers online; roll back on failure."""
    plan = make_plan(name, edges)
    bins = preflight(out)
    state = load_state(plan)
    if state is not None:
        problem = health_problem(make_plan(name, state.edges), state)
        if problem is None and state.edges == edges:
            print(f"lab '{name}' is already up and healthy with {edges} edges", file=out)
            return
        why = problem or f"it has {state.edges} edges, not {edges}"
        raise LabError(f"lab '{name}' is already up ({why}); run `headscale-dev/lab down` first")
    leftovers = sorted(n for n in sy.list_netns() if n.startswith(f"{name}-"))
    if leftovers or os.path.exists(plan.dir):
        raise LabError(
            f"found {', '.join(leftovers) or plan.dir} not recorded by any lab state; remove them by hand "
            f"(ip netns del ...; rm -r {plan.dir}) or pick another lab name with --name"
        )
    try:
        os.makedirs(plan.dir, mode=0o700)
    except FileExistsError as exc:
        raise LabError(f"another `lab up` of '{name}' is running; wait for it or run `lab down`") from exc
    state = State(name=name, edges=edges)
    save_state(plan, state)
    step = Progress(out)
    try:
        _build_network(plan, state, step)
        _start_headscale(plan, state, bins, step)
        keys = _make_keys(plan, bins)
        _start_tailscaleds(plan, state, bins, step)
        _join_all(plan, state, bins, keys, step)
        _wait_mesh(plan, step)
        state.ready = True
        save_state(plan, state)
        step(f"lab '{name}' up: {len(plan.hosts)} hosts in {step.elapsed():.1f}s")
    except BaseException as exc:
        kept = _keep_logs(plan)
        step(f"up failed: {exc}; logs kept in {kept}; rolling back")
        _teardown(plan, state, step)
        raise


def _keep_logs(plan: Plan) -> str:
    """Copy the daemons' logs out of the lab dir before a rollback removes it, and return where they went."""
    dest = tempfile.mkdtemp(prefix=f"{plan.name}-lab-failed-")
    for log in Path(plan.dir).glob("*/*.log"):
        shutil.copy(log, f"{dest}/{log.parent.name}-{log.name}")
    return dest


def _build_network(plan: Plan, state: State, step: Progress) -> None:
    hub = plan.hub_netns
    for netns in [hub, *(h.netns for h in plan.hosts)]:
        sy.run(["ip", "netns", "add", netns])
        state.netns.append(netns)
        save_state(plan, state)
        sy.run(["ip", "-n", netns, "link", "set", "lo", "up"])
        _dummy_resolv_conf(plan, state, netns)
    # The service address lives on the hub's loopback: no dummy module needed, reachable from every veth.
    sy.run(["ip", "-n", hub, "addr", "add", f"{HUB_IP}/32", "dev", "lo"])
    sy.run(sy.ns(hub, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
    for h in plan.hosts:
        # Both ends are created directly inside their namespaces: no interface ever exists in the root netns.
        veth = ["type", "veth", "peer", "name", "eth0", "netns", h.netns]
        sy.run(["ip", "link", "add", h.hub_veth, "netns", hub, *veth])
        sy.run(["ip", "-n", hub, "addr", "add", f"{h.gateway}/24", "dev", h.hub_veth])
        sy.run(["ip", "-n", hub, "link", "set", h.hub_veth, "up"])
        sy.run(["ip", "-n", h.netns, "addr", "add", f"{h.underlay}/24", "dev", "eth0"])
        sy.run(["ip", "-n", h.netns, "link", "set", "eth0", "up"])
        sy.run(["ip", "-n", h.netns, "route", "add", "default", "via", h.gateway])
    sy.run(sy.ns(hub, "nft", "-f", _write(f"{plan.hub_dir}/lab.nft", HUB_NFT)))
    watch = _write(f"{plan.dir}/watch.nft", HOST_WATCH_NFT)
    for h in plan.hosts:
        sy.run(sy.ns(h.netns, "nft", "-f", watch))
    step(f"network: hub {hub} ({HUB_IP}) + {len(plan.hosts)} hosts, routed star, no link to the root netns")


def _dummy_resolv_conf(plan: Plan, state: State, netns: str) -> None:
    """Give `ip netns exec` a private resolv.conf so nothing in the lab can ever touch the host's file."""
    if not os.path.isdir("/etc/netns"):
        os.makedirs("/etc/netns")
        state.files.append("/etc/netns")
    d = f"/etc/netns/{netns}"
    os.makedirs(d)
    state.files.append(d)
    _write(f"{d}/resolv.conf", "# caravanserai lab: no DNS outside the lab\nnameserver 127.0.0.53\n")
    state.files.append(f"{d}/resolv.conf")
    save_state(plan, state)


def _write(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Path(path).write_text(text)
    return path


def _headscale(plan: Plan, bins: Path, *args: str) -> Any:
    out = sy.run([str(bins / "headscale"), "-c", f"{plan.hub_dir}/config.yaml", *args, "-o", "json"])
    return json.loads(out)


def _start_headscale(plan: Plan, state: State, bins: Path, step: Progress) -> None:
    _write(f"{plan.hub_dir}/config.yaml", json.dumps(headscale_config(plan), indent=2))
    _write(f"{plan.hub_dir}/policy.hujson", policy())
    argv = [str(bins / "headscale"), "-c", f"{plan.hub_dir}/config.yaml", "serve"]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": plan.hub_dir}
    state.pids["headscale"] = sy.start_daemon(plan.hub_netns, argv, log=f"{plan.hub_dir}/headscale.log", env=env)
    save_state(plan, state)

    def ready() -> bool:
        if not sy.alive(state.pids["headscale"]):
            raise LabError(f"headscale exited:\n{sy.tail(f'{plan.hub_dir}/headscale.log')}")
        _headscale(plan, bins, "users", "list")
        return True

    sy.wait_for("headscale to answer on its unix socket", ready, timeout=UP_TIMEOUT)
    step(f"headscale {HUB_IP}:{HEADSCALE_PORT} ready (embedded DERP region {DERP_REGION_CODE})")


def _make_keys(plan: Plan, bins: Path) -> dict[str, str]:
    """Return a reusable 24 h pre-auth key per role: tag-only keys for control and nodes, user `ops` for operator,
    user `stranger` (untagged, in no rule of the policy) for the stranger."""
    ops = _headscale(plan, bins, "users", "create", OPERATOR_USER)
    stranger = _headscale(plan, bins, "users", "create", STRANGER_USER)
    create = ["preauthkeys", "create", "--reusable", "-e", "24h"]
    return {
        "operator": _headscale(plan, bins, *create, "--user", str(ops["id"]))["key"],
        "stranger": _headscale(plan, bins, *create, "--user", str(stranger["id"]))["key"],
        "control": _headscale(plan, bins, *create, "--tags", ",".join(CONTROL_TAGS))["key"],
        "node": _headscale(plan, bins, *create, "--tags", NODE_TAG)["key"],
    }


def _start_tailscaleds(plan: Plan, state: State, bins: Path, step: Progress) -> None:
    for h in plan.hosts:
        os.makedirs(h.dir, mode=0o700, exist_ok=True)
        argv = [str(bins / "tailscaled"), f"--statedir={h.dir}", f"--socket={h.socket}", "--tun=tailscale0"]
        argv += [f"--port={TAILSCALED_PORT}", "--no-logs-no-support"]
        state.pids[h.name] = sy.start_daemon(h.netns, argv, log=h.log, env=tailscaled_env(str(bins), h.dir))
        save_state(plan, state)
    _write_wrappers(plan, bins)
    for h in plan.hosts:
        sy.wait_for(f"tailscaled on {h.name}", functools.partial(_needs_login, state, h), timeout=UP_TIMEOUT)
    step(f"{len(plan.hosts)} tailscaled started (NeedsLogin)")


def _write_wrappers(plan: Plan, bins: Path) -> None:
    """Put `tailscale` (honouring TS_SOCKET) and `headscale` (with the lab config) on the PATH of `lab exec`."""
    d = f"{plan.dir}/bin"
    ts = f'#!/bin/sh\nexec {bins}/tailscale --socket="${{TS_SOCKET:?TS_SOCKET is not set}}" "$@"\n'
    hs = f'#!/bin/sh\nexec {bins}/headscale -c {plan.hub_dir}/config.yaml "$@"\n'
    for name, text in (("tailscale", ts), ("headscale", hs)):
        os.chmod(_write(f"{d}/{name}", text), 0o755)


def _needs_login(state: State, h: Host) -> bool:
    if not sy.alive(state.pids[h.name]):
        raise LabError(f"tailscaled on {h.name} exited:\n{sy.tail(h.log)}")
    return bool(sy.localapi(h.socket, "status?peers=false")["BackendState"] == "NeedsLogin")


def _join_all(plan: Plan, state: State, bins: Path, keys: dict[str, str], step: Progress) -> None:
    """Log every host in, in plan order so sequential allocation gives predictable IPs (control .1, operator .2,
    edgeK .K+2); each next `tailscale up` starts as soon as headscale has registered the previous node."""
    joins: list[tuple[Host, subprocess.Popen[str]]] = []
    for n, h in enumerate(plan.hosts, start=1):
        argv = [
            str(bins / "tailscale"),
            f"--socket={h.socket}",
            "up",
            f"--login-server=http://{HUB_IP}:{HEADSCALE_PORT}",
        ]
        argv += [f"--auth-key={keys[h.role]}", f"--hostname={h.hostname}", "--accept-dns=false", "--netfilter-mode=off"]
        env = tailscaled_env(str(bins), h.dir)
        p = subprocess.Popen(
            sy.ns(h.netns, *argv, "--timeout=60s"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        joins.append((h, p))
        sy.wait_for(
            f"headscale to register {h.name}", functools.partial(_registered, plan, bins, n, h, p), timeout=UP_TIMEOUT
        )
    for h, p in joins:
        output, _ = p.communicate(timeout=UP_TIMEOUT)
        if p.returncode != 0:
            raise LabError(f"`tailscale up` on {h.name} failed: {output.strip()}")
        me = sy.localapi(h.socket, "status?peers=false")
        ips = me.get("TailscaleIPs") or []
        state.hosts[h.name] = {
            "ip": next((i for i in ips if ":" not in i), ""),
            "ipv6": next((i for i in ips if ":" in i), ""),
            "dnsName": str(me["Self"].get("DNSName", "")).rstrip("."),
            "socket": h.socket,
            "underlay": h.underlay,
            "netns": h.netns,
        }
        save_state(plan, state)
        step(f"{h.name} joined ({state.hosts[h.name]['ip']})")


def _registered(plan: Plan, bins: Path, count: int, h: Host, p: subprocess.Popen[str]) -> bool:
    if p.poll() is not None and p.returncode != 0:
        raise LabError(f"`tailscale up` on {h.name} failed: {(p.stdout.read() if p.stdout else '').strip()}")
    return len(_headscale(plan, bins, "nodes", "list") or []) >= count


def mesh_problem(plan: Plan) -> str | None:
    """Return why the tailnet is not settled (a host not Running, a peer missing or offline), or None. Under the
    policy every member sees every other member, and the stranger sees nobody."""
    members = sum(h.member for h in plan.hosts)
    for h in plan.hosts:
        want = members - 1 if h.member else 0
        st = sy.localapi(h.socket, "status")
        if st.get("BackendState") != "Running":
            return f"{h.name} is {st.get('BackendState')}"
        if (st.get("Self") or {}).get("Relay") != DERP_REGION_CODE:
            return f"{h.name} has no home DERP yet"
        peers = list((st.get("Peer") or {}).values())
        online = [p for p in peers if p.get("Online") and p.get("Relay")]
        if len(online) != want:
            return f"{h.name} sees {len(online)}/{want} peers online"
        relay_trouble = [w for w in st.get("Health") or [] if "relay server" in w]
        if relay_trouble:
            return f"{h.name}: {relay_trouble[0]}"
    return None


def _wait_mesh(plan: Plan, step: Progress) -> None:
    last: list[str | None] = [None]

    def settled() -> bool:
        last[0] = mesh_problem(plan)
        return last[0] is None

    try:
        sy.wait_for("all peers online", settled, timeout=UP_TIMEOUT)
    except LabError as exc:
        raise LabError(f"{exc}: {last[0]}") from exc
    step(f"all {len(plan.hosts)} hosts Running, every allowed peer online via DERP region {DERP_REGION_CODE}")


def health_problem(plan: Plan, state: State) -> str | None:
    """Return what is wrong with a recorded lab (unfinished, a daemon dead, mesh unsettled), or None if healthy."""
    if not state.ready:
        return "its `up` never finished"
    dead = [n for n, pid in state.pids.items() if not sy.alive(pid)]
    if dead:
        return f"daemon(s) not running: {', '.join(dead)}"
    try:
        return mesh_problem(plan)
    except (OSError, LabError, ValueError) as exc:
        return f"LocalAPI unreachable ({exc})"


# ---- down ---------------------------------------------------------------------------------------------------------


def down(name: str, out: TextIO, *, force: bool = False) -> None:
    """Remove exactly what `up` recorded: daemons, namespaces, /etc/netns files and the lab dir."""
    if os.geteuid() != 0:
        raise LabError("must run as root: use sudo headscale-dev/lab down")
    probe = make_plan(name, 0)
    state = load_state(probe)
    if state is None:
        print(f"lab '{name}' is not up; nothing to do", file=out)
        return
    plan = make_plan(name, state.edges)
    in_use = [p for p in users(plan) if p != os.getpid()]
    if in_use and not force:
        raise LabError(f"lab '{name}' is in use by test run(s) {in_use}; wait for them or use `lab down --force`")
    step = Progress(out)
    _teardown(plan, state, step)
    step(f"lab '{name}' down")


def _teardown(plan: Plan, state: State, step: Progress) -> None:
    containers.teardown(plan)  # containers, podman services and the registry first: they live in the namespaces
    daemons = [n for n in state.pids if n != "headscale"] + (["headscale"] if "headscale" in state.pids else [])
    netns_of = {h.name: h.netns for h in plan.hosts} | {"headscale": plan.hub_netns}
    for n in daemons:
        pid = state.pids[n]
        if _pid_in_netns(pid, netns_of.get(n, "")):  # never signal a recycled PID that is not ours
            sy.stop(pid)
    for netns in reversed(state.netns):
        sy.run(["ip", "netns", "del", netns], check=False)
    for f in reversed(state.files):
        if os.path.isdir(f):
            try:
                os.rmdir(f)
            except OSError:
                pass  # not empty: someone else put something there
        elif os.path.exists(f):
            os.remove(f)
    shutil.rmtree(plan.dir, ignore_errors=True)
    step(f"removed {len(daemons)} daemons, {len(state.netns)} namespaces, {plan.dir}")


def _pid_in_netns(pid: int, netns: str) -> bool:
    try:
        return sy.alive(pid) and os.stat(f"/proc/{pid}/ns/net").st_ino == sy.netns_inode(netns)
    except OSError:
        return False


def restart(name: str, daemon: str, down: float, out: TextIO) -> None:
    """Stop one daemon (a host's tailscaled, or `headscale`), leave it down `down` seconds, start it again with the
    argv and environment it ran with (its state dir keeps the login), record the new PID and wait until it serves:
    tailscaled Running, headscale answering on its socket. Fault tests use it for outages and restarts."""
    if os.geteuid() != 0:
        raise LabError("must run as root: use sudo headscale-dev/lab restart")
    if down < 0:
        raise LabError(f"bad --down {down:g}: must be zero or more seconds")
    plan = plan_of_running(name)
    state = load_state(plan)
    assert state is not None
    key = "headscale" if daemon in ("headscale", "hub") else plan.host(daemon).name
    netns = plan.hub_netns if key == "headscale" else plan.host(key).netns
    pid = state.pids[key]
    if not _pid_in_netns(pid, netns):
        raise LabError(f"{key} (PID {pid}) is not running in {netns}; the lab needs `down` and `up`")
    argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]]
    env = dict(e.decode().split("=", 1) for e in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in e)
    step = Progress(out)
    sy.stop(pid)
    step(f"{key} stopped (PID {pid})")
    time.sleep(down)
    log = f"{plan.hub_dir}/headscale.log" if key == "headscale" else plan.host(key).log
    new = sy.start_daemon(netns, argv, log=log, env=env)
    state = load_state(plan)  # re-read: block/shape may have been recorded meanwhile
    assert state is not None
    state.pids[key] = new
    save_state(plan, state)

    def serving() -> bool:
        if not sy.alive(new):
            raise LabError(f"{key} exited after restart:\n{sy.tail(log)}")
        if key == "headscale":
            sy.run([argv[0], "-c", f"{plan.hub_dir}/config.yaml", "users", "list", "-o", "json"])
            return True
        return bool(sy.localapi(plan.host(key).socket, "status?peers=false")["BackendState"] == "Running")

    sy.wait_for(f"{key} to serve again", serving, timeout=UP_TIMEOUT)
    step(f"{key} started again (PID {new}) and serving")
