"""Pure description of a lab: names, addresses, paths, rendered configs and the state file format."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HEADSCALE_VERSION = "v0.29.2"
TAILSCALE_VERSION = "v1.98.10"

DEFAULT_NAME = "cara"
DEFAULT_EDGES = 3
MAX_EDGES = 200

HUB_IP = "10.99.0.1"  # headscale + embedded DERP, on the hub netns loopback
HEADSCALE_PORT = 8080
BASE_DOMAIN = "tailnet.test"
DERP_REGION_ID = 999
DERP_REGION_CODE = "headscale"
TAILSCALED_PORT = 41641

SERVER_TAG = "tag:cara-server"
NODE_TAG = "tag:cara-node"
#: The image registry's tag (the policy lets agents reach it on :5000); the lab's registry runs on the control host.
REGISTRY_TAG = "tag:cara-registry"
#: The control host's tags: the control plane and, in the lab, the image registry.
CONTROL_TAGS = (SERVER_TAG, REGISTRY_TAG)
OPERATOR_USER = "ops"
SERVER_HOSTNAME = "cara-server"
#: An untagged machine of another user, outside every rule of the policy: it must reach nothing of Caravanserai.
STRANGER_USER = "stranger"
#: The deployment's tailnet policy: the lab's headscale runs with this very file.
POLICY_FILE = Path(__file__).resolve().parents[2] / "deploy" / "headscale" / "policy.hujson"

NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")  # keeps netns, veth and socket names short


class LabError(Exception):
    """Raised for any failure the lab reports as one line on stderr with exit code 1."""


def bin_dir() -> Path:
    """Return the version-keyed binary cache that `headscale-dev/install` fills."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "caravanserai-lab" / "bin" / f"hs-{HEADSCALE_VERSION}-ts-{TAILSCALE_VERSION}"


@dataclass(frozen=True)
class Host:
    """One tailnet host of the lab: its namespace, underlay link to the hub and tailscaled paths."""

    name: str  # lab host name: control, operator, edge1..edgeN
    netns: str  # network namespace, e.g. cara-edge1
    index: int  # third octet of the host's /24
    hostname: str  # tailnet hostname (MagicDNS label)
    role: str  # control, operator, node or stranger
    dir: str  # statedir of its tailscaled

    @property
    def member(self) -> bool:
        """Return whether the policy lets the host talk to Caravanserai machines (every host but the stranger)."""
        return self.role != "stranger"

    @property
    def underlay(self) -> str:
        """Return the host's own underlay address (the hub is .1 on the same /24)."""
        return f"10.99.{self.index}.2"

    @property
    def gateway(self) -> str:
        """Return the hub's address on this host's /24."""
        return f"10.99.{self.index}.1"

    @property
    def hub_veth(self) -> str:
        """Return the name of the hub-side end of this host's veth (at most 15 characters)."""
        return f"v-{self.name}"[:15]

    @property
    def socket(self) -> str:
        """Return the LocalAPI socket path of this host's tailscaled."""
        return f"{self.dir}/ts.sock"

    @property
    def log(self) -> str:
        """Return the log file of this host's tailscaled."""
        return f"{self.dir}/tailscaled.log"


@dataclass(frozen=True)
class Plan:
    """Everything `up` will create for one lab name and edge count, before anything exists."""

    name: str
    edges: int
    dir: str  # lab dir holding configs, sockets, logs and state.json
    hub_netns: str
    hosts: tuple[Host, ...]

    @property
    def hub_dir(self) -> str:
        """Return the headscale working directory."""
        return f"{self.dir}/hub"

    @property
    def state_file(self) -> str:
        """Return the path of the running lab's state file."""
        return f"{self.dir}/state.json"

    @property
    def netns_resolv_dirs(self) -> list[str]:
        """Return the /etc/netns/<ns> directories holding each namespace's dummy resolv.conf."""
        return [f"/etc/netns/{ns}" for ns in [self.hub_netns, *(h.netns for h in self.hosts)]]

    def host(self, name: str) -> Host:
        """Return the host called `name`; raises LabError naming the valid hosts otherwise."""
        for h in self.hosts:
            if h.name == name:
                return h
        raise LabError(f"unknown host '{name}' (hosts: {', '.join(h.name for h in self.hosts)})")


def make_plan(name: str = DEFAULT_NAME, edges: int = DEFAULT_EDGES, root: str = "/run") -> Plan:
    """Return the plan of lab `name` with `edges` edge hosts; raises LabError on a bad name or count."""
    if not NAME_RE.match(name):
        raise LabError(f"bad lab name '{name}': use 1-10 lowercase letters/digits starting with a letter")
    if not 0 <= edges <= MAX_EDGES:
        raise LabError(f"--edges must be between 0 and {MAX_EDGES}, got {edges}")
    lab_dir = f"{root}/{name}-lab"
    specs = [("control", 1, SERVER_HOSTNAME, "control"), ("operator", 2, "operator", "operator")]
    specs += [(f"edge{k}", 10 + k, f"edge{k}", "node") for k in range(1, edges + 1)]
    specs += [("stranger", 3, "stranger", "stranger")]  # joins last: the others keep their addresses
    hosts = tuple(
        Host(name=n, netns=f"{name}-{n}", index=i, hostname=hn, role=r, dir=f"{lab_dir}/{n}") for n, i, hn, r in specs
    )
    return Plan(name=name, edges=edges, dir=lab_dir, hub_netns=f"{name}-hub", hosts=hosts)


def headscale_config(plan: Plan) -> dict[str, Any]:
    """Return the headscale config (written as JSON, which is valid YAML) for a hermetic offline lab."""
    hub = plan.hub_dir
    return {
        "server_url": f"http://{HUB_IP}:{HEADSCALE_PORT}",  # IP literal: no DNS, no bootstrap-DNS fallback
        "listen_addr": f"0.0.0.0:{HEADSCALE_PORT}",
        "metrics_listen_addr": "127.0.0.1:9090",
        "grpc_listen_addr": "127.0.0.1:50443",
        "noise": {"private_key_path": f"{hub}/noise_private.key"},
        "prefixes": {"v4": "100.64.0.0/10", "v6": "fd7a:115c:a1e0::/48", "allocation": "sequential"},
        "derp": {
            "server": {
                "enabled": True,
                "region_id": DERP_REGION_ID,
                "region_code": DERP_REGION_CODE,
                "region_name": "Headscale Embedded DERP",
                "verify_clients": True,
                "stun_listen_addr": "0.0.0.0:3478",
                "private_key_path": f"{hub}/derp_server_private.key",
                "automatically_add_embedded_derp_region": True,
                "ipv4": HUB_IP,
            },
            "urls": [],  # never fetch Tailscale's public DERP map
            "paths": [],
            "auto_update_enabled": False,
        },
        "disable_check_updates": True,
        "database": {"type": "sqlite", "sqlite": {"path": f"{hub}/db.sqlite", "write_ahead_log": True}},
        "dns": {
            "magic_dns": True,
            "base_domain": BASE_DOMAIN,
            "override_local_dns": False,
            "nameservers": {"global": []},
        },
        "unix_socket": f"{hub}/headscale.sock",
        "unix_socket_permission": "0770",
        "policy": {"mode": "file", "path": f"{hub}/policy.hujson"},
        "log": {"level": "info"},
        "logtail": {"enabled": False},
        # Faster peer propagation than the 800 ms default, so `up` and path flips settle sooner.
        "tuning": {"batch_change_delay": "100ms"},
    }


def policy() -> str:
    """Return the headscale policy: the deployment's own deploy/headscale/policy.hujson (HuJSON)."""
    return POLICY_FILE.read_text()


HUB_NFT = """table inet lab {
  set noudp { type ipv4_addr . ipv4_addr; }
  chain forward_filter { type filter hook forward priority 0; policy accept;
    ip saddr . ip daddr @noudp meta l4proto udp drop
  }
}
"""
"""The hub's firewall: `block A B` adds the pairs (A . B, B . A) to `noudp`; the chain must not be named `fwd`."""

HOST_WATCH_NFT = """table inet labwatch {
  chain out { type filter hook output priority 0; policy accept;
    ip daddr != { 10.99.0.0/16, 100.64.0.0/10, 127.0.0.0/8 } counter comment "escape"
    ip6 daddr != { fd7a:115c:a1e0::/48, fe80::/10, ff00::/8, ::1 } counter comment "escape"
    ip daddr 127.0.0.0/8 udp dport 53 counter comment "dns"
  }
}
"""
"""Counts, in every host netns from before its tailscaled starts, packets sent outside the lab's own networks
("escape") and DNS queries to the dummy resolver ("dns"); a hermetic lab keeps both at zero. Counters only."""


HOST_CUT_NFT = """table inet labcut {
  set peers4 { type ipv4_addr; }
  set peers6 { type ipv6_addr; }
  chain in { type filter hook input priority 0; policy accept;
    iifname "tailscale0" ip saddr @peers4 drop
    iifname "tailscale0" ip6 saddr @peers6 drop
  }
  chain out { type filter hook output priority 0; policy accept;
    oifname "tailscale0" ip daddr @peers4 drop
    oifname "tailscale0" ip6 daddr @peers6 drop
  }
}
"""
"""`cut A B`: a firewall inside A's netns on its tailnet interface that drops every packet to or from B's tailnet
addresses: A and B cannot talk over the tailnet at all, whether the path is direct or relayed through DERP (both end in
tailscale0), while each keeps its coordination server and every other peer. tailscaled's own disco and TSMP traffic
does not cross tailscale0, so `tailscale ping` still answers: an honest check of a cut is a plain `ping` through it."""


def count_packets(nft_json: dict[str, Any]) -> dict[str, int]:
    """Return packets per counter comment from `nft -j list table ...` output."""
    counts: dict[str, int] = {}
    for item in nft_json.get("nftables", []):
        rule = item.get("rule")
        if not rule or "comment" not in rule:
            continue
        for expr in rule.get("expr", []):
            if "counter" in expr:
                counts[rule["comment"]] = counts.get(rule["comment"], 0) + int(expr["counter"]["packets"])
    return counts


def tailscaled_env(bin_path: str, host_dir: str) -> dict[str, str]:
    """Return the whole environment of a lab tailscaled: hermeticity switches and plain-HTTP DERP (option A)."""
    return {
        "PATH": f"{bin_path}:/usr/sbin:/usr/bin:/sbin:/bin",
        "TS_LOGS_DIR": host_dir,  # else logpolicy writes a shared /var/lib/tailscale/tailscaled.log.conf
        "TS_DEBUG_USE_DERP_HTTP": "1",  # headscale serves DERP on its plain-HTTP listener
        "TS_ASSUME_NETWORK_UP_FOR_TEST": "1",
        "TS_DISABLE_PORTMAPPER": "1",
        "TS_PANIC_IF_HIT_MAIN_CONTROL": "1",  # crash rather than contact controlplane.tailscale.com
    }


def parse_rate(rate: str) -> int:
    """Return a tc rate such as `100mbit`, `512kbit` or `1gbit` in bits per second; raises LabError if malformed."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)", rate.strip().lower())
    if not m:
        raise LabError(f"bad rate '{rate}': use e.g. 100mbit, 512kbit, 1gbit, or 'off'")
    scale = {"bit": 1, "kbit": 1_000, "mbit": 1_000_000, "gbit": 1_000_000_000}[m.group(2)]
    bits = int(float(m.group(1)) * scale)
    if bits <= 0:
        raise LabError(f"bad rate '{rate}': must be positive")
    return bits


def tbf_burst_bytes(bits_per_second: int) -> int:
    """Return a tbf bucket holding 10 ms of traffic, at least 16 KB so a 1000 Hz timer can keep up."""
    return max(bits_per_second // 8 // 100, 16_000)


@dataclass
class State:
    """What a running lab created, saved to state.json after every step so `down` can undo exactly that."""

    name: str
    edges: int
    hosts: dict[str, dict[str, str]] = field(default_factory=dict)  # the status JSON's hosts
    pids: dict[str, int] = field(default_factory=dict)  # daemon name (headscale or host) -> PID
    netns: list[str] = field(default_factory=list)  # namespaces created, in creation order
    files: list[str] = field(default_factory=list)  # paths created outside the lab dir (/etc/netns/...)
    blocked: list[list[str]] = field(default_factory=list)  # host pairs whose direct UDP is dropped
    cut: list[list[str]] = field(default_factory=list)  # host pairs cut from each other inside the tailnet
    shaped: dict[str, str] = field(default_factory=dict)  # host -> tc rate
    ready: bool = False  # true once `up` finished

    def to_json(self) -> str:
        """Return the state as stable, indented JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> State:
        """Parse a state file; raises LabError if it is not one."""
        try:
            raw = json.loads(text)
            return cls(**raw)
        except (ValueError, TypeError) as exc:
            raise LabError(f"corrupt lab state file ({exc}); remove it by hand after checking `ip netns`") from exc
