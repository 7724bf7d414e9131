"""The agent's settings: read once from flags and an injected environment mapping, validated, frozen."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from controlplane.api import (
    AGENT_PORT,
    SERVER_NAME,
    SERVER_PORT,
    cpu_millis,
    parse_duration,
    quantity_bytes,
    validate_name,
)

#: The control plane's MagicDNS name when neither --server nor SERVER_URL is given (design §5.3).
DEFAULT_SERVER_NAME: Final = SERVER_NAME
DEFAULT_SERVER_PORT: Final = SERVER_PORT
DEFAULT_AGENT_PORT: Final = AGENT_PORT
BACKENDS: Final = ("server", "speedtest", "off")

#: Each setting: (flag name, environment variable). A flag beats the variable; the variable beats the default.
VARIABLES: Final = {
    "node_name": "NODE_NAME",
    "server": "SERVER_URL",
    "socket": "TS_SOCKET",
    "heartbeat_interval": "HEARTBEAT_INTERVAL",
    "status_interval": "STATUS_INTERVAL",
    "throughput_interval": "THROUGHPUT_INTERVAL",
    "throughput_duration": "THROUGHPUT_DURATION",
    "throughput_streams": "THROUGHPUT_STREAMS",
    "throughput_backend": "THROUGHPUT_BACKEND",
    "listen_port": "AGENT_LISTEN_PORT",
    "listen_address": "AGENT_LISTEN_ADDRESS",
    "data_dir": "DATA_DIR",
    "system_reserved": "SYSTEM_RESERVED",
    "max_peers": "MAX_PEERS",
    "peer_probes_per_round": "PEER_PROBES_PER_ROUND",
    "peer_refresh_period": "PEER_REFRESH_PERIOD",
    "runtime_socket": "CONTAINER_RUNTIME_SOCKET",
    "project_poll_interval": "PROJECT_POLL_INTERVAL",
    "ingress_port": "INGRESS_PORT",
    "agent_admins": "AGENT_ADMINS",
    "agent_viewers": "AGENT_VIEWERS",
}

#: Where a container runtime's Docker API socket is looked for when CONTAINER_RUNTIME_SOCKET is unset, in order.
RUNTIME_SOCKETS: Final = ("/run/docker.sock", "/var/run/docker.sock", "/run/podman/podman.sock")
DEFAULT_INGRESS_PORT: Final = 8081


class SettingsError(ValueError):
    """SettingsError is raised for a bad value; its message is one line naming the variable or flag."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """Reservation is what the system keeps for itself: allocatable = capacity - reservation."""

    cpu_millis: int = 100
    memory_bytes: int = 256 * 2**20
    disk_bytes: int = 1 * 2**30


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings holds everything the agent reads from its environment, in units code can use."""

    node_name: str
    hostname: str
    # server_url: the control plane's URL; None means "resolve server_name through tailscaled".
    server_url: str | None = None
    server_name: str = DEFAULT_SERVER_NAME
    server_port: int = DEFAULT_SERVER_PORT
    socket: str | None = None
    heartbeat_interval: float = 10.0
    # status_interval: the full status goes out at least this often even when nothing changed (design §3.4).
    status_interval: float = 60.0
    throughput_interval: float = 30 * 60.0
    # throughput_duration: seconds per direction, ramp-up included.
    throughput_duration: float = 3.0
    throughput_streams: int = 4
    throughput_backend: str = "server"
    listen_port: int = DEFAULT_AGENT_PORT
    # listen_address: where /healthz and /metrics listen; None means this node's tailnet IPv4.
    listen_address: str | None = None
    data_dir: Path = Path("/var/lib/caravanserai")
    reserved: Reservation = Reservation()
    max_peers: int = 16
    # peer_probes_per_round: fellow agents probed per heartbeat (raised to meet the period); 0 turns probing off.
    peer_probes_per_round: int = 4
    # peer_refresh_period: every tracked fellow agent is probed at least this often.
    peer_refresh_period: float = 60.0
    # runtime_socket: the Docker Engine API socket (dockerd or podman); None: the first of RUNTIME_SOCKETS that
    # exists at start; "" (the value "off"): no runtime, every Project bound here fails.
    runtime_socket: str | None = None
    # project_poll_interval: seconds between reconcile passes over this Node's Projects.
    project_poll_interval: float = 1.0
    # ingress_port: the Projects' ingress proxy on the tailnet address; 0 turns it off.
    ingress_port: int = DEFAULT_INGRESS_PORT
    # agent_admins / agent_viewers: tailnet users (`ops` or `ops@example.com`) and tags (`tag:x`) allowed on the
    # agent's API: admins may read logs and port-forward, viewers may read logs. Empty: nobody.
    agent_admins: tuple[str, ...] = ()
    agent_viewers: tuple[str, ...] = ()


def _pick(name: str, flags: Mapping[str, str | None], environ: Mapping[str, str]) -> tuple[str | None, str]:
    """_pick returns the raw value of a setting and how to name it in an error (flag or variable)."""
    variable = VARIABLES[name]
    if flags.get(name) is not None:
        return flags[name], "--" + name.replace("_", "-")
    value = environ.get(variable)
    return (value if value else None), variable


def _duration(raw: str, label: str) -> float:
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise SettingsError(f"{label}: {exc}") from None


def _int(raw: str, label: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{label}: {raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{label}: {value} is out of range [{low}, {high}]")
    return value


def parse_reservation(raw: str, label: str) -> Reservation:
    """parse_reservation reads `cpu=100m,memory=256Mi,disk=1Gi` (any subset; missing keys keep their default)."""
    values: dict[str, int] = {}
    fields = {
        "cpu": ("cpu_millis", cpu_millis),
        "memory": ("memory_bytes", quantity_bytes),
        "disk": ("disk_bytes", quantity_bytes),
    }
    for term in filter(None, (t.strip() for t in raw.split(","))):
        key, sep, quantity = term.partition("=")
        if not sep or key.strip() not in fields:
            raise SettingsError(f"{label}: {term!r} is not cpu=Q, memory=Q or disk=Q")
        attr, parse = fields[key.strip()]
        try:
            values[attr] = parse(quantity.strip())
        except ValueError as exc:
            raise SettingsError(f"{label}: {key.strip()}: {exc}") from None
    return Reservation(**values)


def node_name_from(raw: str | None, hostname: str, label: str) -> str:
    """node_name_from is NODE_NAME if set, else the OS hostname lowercased; raises SettingsError if invalid."""
    name = raw if raw is not None else hostname.lower()
    try:
        return validate_name(name)
    except ValueError as exc:
        source = label if raw is not None else f"the OS hostname {hostname!r} (set NODE_NAME)"
        raise SettingsError(f"{source}: {name!r} is not a valid Node name: {exc}") from None


def find_runtime_socket(configured: str | None, exists: Callable[[str], bool]) -> str | None:
    """find_runtime_socket is the runtime socket to use: the configured one ("" means none), else the first of
    RUNTIME_SOCKETS that exists, else None."""
    if configured is not None:
        return configured or None
    return next((path for path in RUNTIME_SOCKETS if exists(path)), None)


def load_settings(flags: Mapping[str, str | None], environ: Mapping[str, str], *, hostname: str) -> Settings:
    """load_settings builds Settings from flags (None = not given) over environ; raises SettingsError on bad input."""

    def get(name: str) -> tuple[str | None, str]:
        return _pick(name, flags, environ)

    raw, label = get("node_name")
    kw: dict[str, object] = {"node_name": node_name_from(raw, hostname, label), "hostname": hostname}
    raw, label = get("server")
    if raw is not None:
        if not raw.startswith(("http://", "https://")):
            raise SettingsError(f"{label}: {raw!r} must be an http:// or https:// URL")
        kw["server_url"] = raw.rstrip("/")
    raw, _ = get("socket")
    if raw is not None:
        kw["socket"] = raw
    for name in (
        "heartbeat_interval",
        "status_interval",
        "throughput_interval",
        "throughput_duration",
        "peer_refresh_period",
        "project_poll_interval",
    ):
        raw, label = get(name)
        if raw is not None:
            kw[name] = _duration(raw, label)
    raw, label = get("throughput_streams")
    if raw is not None:
        kw["throughput_streams"] = _int(raw, label, 1, 32)
    raw, label = get("throughput_backend")
    if raw is not None:
        if raw not in BACKENDS:
            raise SettingsError(f"{label}: {raw!r} is not one of {', '.join(BACKENDS)}")
        kw["throughput_backend"] = raw
    raw, label = get("listen_port")
    if raw is not None:
        kw["listen_port"] = _int(raw, label, 1, 65535)
    raw, _ = get("listen_address")
    if raw is not None:
        kw["listen_address"] = raw
    raw, _ = get("data_dir")
    if raw is not None:
        kw["data_dir"] = Path(raw)
    raw, label = get("system_reserved")
    if raw is not None:
        kw["reserved"] = parse_reservation(raw, label)
    raw, label = get("max_peers")
    if raw is not None:
        kw["max_peers"] = _int(raw, label, 0, 256)
    raw, label = get("peer_probes_per_round")
    if raw is not None:
        kw["peer_probes_per_round"] = _int(raw, label, 0, 256)
    raw, _ = get("runtime_socket")
    if raw is not None:
        kw["runtime_socket"] = "" if raw == "off" else raw
    raw, label = get("ingress_port")
    if raw is not None:
        kw["ingress_port"] = _int(raw, label, 0, 65535)
    for name in ("agent_admins", "agent_viewers"):
        raw, _ = get(name)
        if raw is not None:
            kw[name] = tuple(filter(None, (part.strip() for part in raw.split(","))))
    settings = Settings(**kw)  # type: ignore[arg-type]
    if settings.throughput_duration > 10:
        raise SettingsError("THROUGHPUT_DURATION: at most 10s per direction (the server's cap)")
    if not 0.1 <= settings.project_poll_interval <= 60:
        raise SettingsError("PROJECT_POLL_INTERVAL: must be between 100ms and 60s")
    if settings.status_interval < settings.heartbeat_interval:
        raise SettingsError("STATUS_INTERVAL: must not be shorter than HEARTBEAT_INTERVAL")
    return settings
