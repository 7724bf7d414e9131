"""The agent's settings: one table (flag, variable, parser, default, help) read from flags over the environment over
its environment file (`--env-file`, KEY=VALUE), validated once, frozen."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from controlplane.api import (
    AGENT_PORT,
    SERVER_NAME,
    SERVER_PORT,
    Setting,
    SettingError,
    SettingsTable,
    as_duration,
    as_list,
    as_path,
    as_text,
    as_url,
    cpu_millis,
    int_range,
    one_of,
    quantity_bytes,
    validate_name,
)

#: The control plane's MagicDNS name when neither --server nor SERVER_URL is given (design §5.3).
DEFAULT_SERVER_NAME: Final = SERVER_NAME
DEFAULT_SERVER_PORT: Final = SERVER_PORT
DEFAULT_AGENT_PORT: Final = AGENT_PORT
BACKENDS: Final = ("server", "speedtest", "off")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
#: The tailnet identity of the metrics scraper (deploy/headscale/policy.hujson); it may read /metrics by default.
SCRAPER_TAG: Final = "tag:cara-scraper"
#: Where a container runtime's Docker API socket is looked for when CONTAINER_RUNTIME_SOCKET is unset, in order.
RUNTIME_SOCKETS: Final = ("/run/docker.sock", "/var/run/docker.sock", "/run/podman/podman.sock")
DEFAULT_INGRESS_PORT: Final = 8081

__all__ = [
    "TABLE",
    "Reservation",
    "SettingError",
    "Settings",
    "find_runtime_socket",
    "load_settings",
    "node_name_from",
    "parse_reservation",
]


@dataclass(frozen=True, slots=True)
class Reservation:
    """Reservation is what the system keeps for itself: allocatable = capacity - reservation."""

    cpu_millis: int = 100
    memory_bytes: int = 256 * 2**20
    disk_bytes: int = 1 * 2**30


def parse_reservation(raw: object) -> Reservation:
    """parse_reservation reads `cpu=100m,memory=256Mi,disk=1Gi` (any subset; missing keys keep their default)."""
    values: dict[str, int] = {}
    fields = {
        "cpu": ("cpu_millis", cpu_millis),
        "memory": ("memory_bytes", quantity_bytes),
        "disk": ("disk_bytes", quantity_bytes),
    }
    text = raw if isinstance(raw, str) else as_text(raw)
    for term in filter(None, (t.strip() for t in text.split(","))):
        key, sep, quantity = term.partition("=")
        if not sep or key.strip() not in fields:
            raise ValueError(f"{term!r} is not cpu=Q, memory=Q or disk=Q")
        attr, parse = fields[key.strip()]
        try:
            values[attr] = parse(quantity.strip())
        except ValueError as exc:
            raise ValueError(f"{key.strip()}: {exc}") from None
    return Reservation(**values)


def _runtime_socket(raw: object) -> str:
    """_runtime_socket is a socket path, or "" for the value `off` (no runtime: every Project bound here fails)."""
    text = as_text(raw)
    return "" if text == "off" else text


def _poll_interval(raw: object) -> float:
    seconds = as_duration(raw)
    if not 0.1 <= seconds <= 60:
        raise ValueError("must be between 100ms and 60s")
    return seconds


#: Every setting of cara-agent, in the order `--help` and docs/agent.md list them.
TABLE: Final = SettingsTable(
    Setting("node_name", "NODE_NAME", as_text, None, "Node name.", shown="the OS hostname, lowercased"),
    Setting(
        "server", "SERVER_URL", as_url, None, "Control plane URL.", shown=f"MagicDNS {SERVER_NAME}, port {SERVER_PORT}"
    ),
    Setting("socket", "TS_SOCKET", as_text, None, "tailscaled LocalAPI socket.", shown="tailscaled's default"),
    Setting("heartbeat_interval", "HEARTBEAT_INTERVAL", as_duration, 10.0, "Beat period, e.g. 10s or 1m.", shown="10s"),
    Setting("status_interval", "STATUS_INTERVAL", as_duration, 60.0, "Full status at least this often.", shown="60s"),
    Setting("throughput_interval", "THROUGHPUT_INTERVAL", as_duration, 1800.0, "Measurement period.", shown="30m"),
    Setting(
        "throughput_duration",
        "THROUGHPUT_DURATION",
        as_duration,
        3.0,
        "Seconds per direction (at most 10s).",
        shown="3s",
    ),
    Setting("throughput_streams", "THROUGHPUT_STREAMS", int_range(1, 32), 4, "Parallel streams."),
    Setting("throughput_backend", "THROUGHPUT_BACKEND", one_of(*BACKENDS), "server", "server, speedtest or off."),
    Setting("listen_port", "AGENT_LISTEN_PORT", int_range(1, 65535), DEFAULT_AGENT_PORT, "Port of /healthz, /metrics."),
    Setting(
        "listen_address",
        "AGENT_LISTEN_ADDRESS",
        as_text,
        None,
        "Address of /healthz and /metrics.",
        shown="this node's tailnet IPv4",
    ),
    Setting("data_dir", "DATA_DIR", as_path, Path("/var/lib/caravanserai"), "Directory whose disk is reported."),
    Setting(
        "system_reserved",
        "SYSTEM_RESERVED",
        parse_reservation,
        Reservation(),
        "Kept from allocatable, e.g. cpu=100m,memory=256Mi,disk=1Gi.",
        shown="cpu=100m,memory=256Mi,disk=1Gi",
    ),
    Setting("max_peers", "MAX_PEERS", int_range(0, 256), 16, "Most peers listed in status.network.peers."),
    Setting(
        "peer_probes_per_round",
        "PEER_PROBES_PER_ROUND",
        int_range(0, 256),
        4,
        "Fellow agents probed per heartbeat; 0: off.",
    ),
    Setting(
        "peer_refresh_period",
        "PEER_REFRESH_PERIOD",
        as_duration,
        60.0,
        "Each fellow agent probed at least this often.",
        shown="60s",
    ),
    Setting(
        "runtime_socket",
        "CONTAINER_RUNTIME_SOCKET",
        _runtime_socket,
        None,
        "Docker Engine API socket of dockerd or podman; off: none.",
        shown="the first of " + ", ".join(RUNTIME_SOCKETS) + " that exists",
    ),
    Setting(
        "project_poll_interval",
        "PROJECT_POLL_INTERVAL",
        _poll_interval,
        1.0,
        "Reconcile period of this Node's Projects (100ms to 60s).",
        shown="1s",
    ),
    Setting(
        "ingress_port",
        "INGRESS_PORT",
        int_range(0, 65535),
        DEFAULT_INGRESS_PORT,
        "Projects' ingress proxy port on the tailnet address; 0: off.",
    ),
    Setting(
        "agent_admins",
        "AGENT_ADMINS",
        as_list,
        (),
        "Tailnet users/tags (comma-separated) that may port-forward and read logs; they may also read /metrics.",
        shown="nobody",
    ),
    Setting(
        "agent_viewers",
        "AGENT_VIEWERS",
        as_list,
        (),
        "Tailnet users/tags (comma-separated) that may read logs; they may also read /metrics.",
        shown="nobody",
    ),
    Setting(
        "metrics_callers",
        "METRICS_CALLERS",
        as_list,
        (SCRAPER_TAG,),
        "Tailnet tags and logins (comma-separated) that may read /metrics; /healthz stays open.",
        shown=SCRAPER_TAG,
    ),
    Setting("log_level", "LOG_LEVEL", one_of(*LOG_LEVELS), "info", "debug, info, warning or error."),
)


def _default(name: str) -> Any:
    return TABLE[name].default


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings holds everything the agent reads from its environment, in units code can use (defaults: TABLE)."""

    node_name: str
    hostname: str
    # server_url: the control plane's URL; None means "resolve server_name through tailscaled".
    server_url: str | None = _default("server")
    server_name: str = DEFAULT_SERVER_NAME
    server_port: int = DEFAULT_SERVER_PORT
    socket: str | None = _default("socket")
    heartbeat_interval: float = _default("heartbeat_interval")
    # status_interval: the full status goes out at least this often even when nothing changed (design §3.4).
    status_interval: float = _default("status_interval")
    throughput_interval: float = _default("throughput_interval")
    # throughput_duration: seconds per direction, ramp-up included.
    throughput_duration: float = _default("throughput_duration")
    throughput_streams: int = _default("throughput_streams")
    throughput_backend: str = _default("throughput_backend")
    listen_port: int = _default("listen_port")
    # listen_address: where /healthz and /metrics listen; None means this node's tailnet IPv4.
    listen_address: str | None = _default("listen_address")
    data_dir: Path = _default("data_dir")
    reserved: Reservation = _default("system_reserved")
    max_peers: int = _default("max_peers")
    # peer_probes_per_round: fellow agents probed per heartbeat (raised to meet the period); 0 turns probing off.
    peer_probes_per_round: int = _default("peer_probes_per_round")
    # peer_refresh_period: every tracked fellow agent is probed at least this often.
    peer_refresh_period: float = _default("peer_refresh_period")
    # runtime_socket: the Docker Engine API socket (dockerd or podman); None: the first of RUNTIME_SOCKETS that
    # exists at start; "" (the value "off"): no runtime, every Project bound here fails.
    runtime_socket: str | None = _default("runtime_socket")
    # project_poll_interval: seconds between reconcile passes over this Node's Projects.
    project_poll_interval: float = _default("project_poll_interval")
    # ingress_port: the Projects' ingress proxy on the tailnet address; 0 turns it off.
    ingress_port: int = _default("ingress_port")
    # agent_admins / agent_viewers: tailnet users (`ops` or `ops@example.com`) and tags (`tag:x`) allowed on the
    # agent's API: admins may read logs and port-forward, viewers may read logs. Empty: nobody.
    agent_admins: tuple[str, ...] = _default("agent_admins")
    agent_viewers: tuple[str, ...] = _default("agent_viewers")
    # metrics_callers: tailnet tags (tag:...) and login names whose machines may read /metrics.
    metrics_callers: tuple[str, ...] = _default("metrics_callers")
    log_level: str = _default("log_level")

    @property
    def metrics_readers(self) -> tuple[str, ...]:
        """metrics_readers are who may read /metrics: METRICS_CALLERS, AGENT_ADMINS and AGENT_VIEWERS."""
        return (*self.metrics_callers, *self.agent_admins, *self.agent_viewers)


def node_name_from(raw: str | None, hostname: str, label: str) -> str:
    """node_name_from is NODE_NAME if set, else the OS hostname lowercased; raises SettingError if invalid."""
    name = raw if raw is not None else hostname.lower()
    try:
        return validate_name(name)
    except ValueError as exc:
        source = label if raw is not None else f"the OS hostname {hostname!r} (set NODE_NAME)"
        raise SettingError(f"{source}: {name!r} is not a valid Node name: {exc}") from None


def find_runtime_socket(configured: str | None, exists: Callable[[str], bool]) -> str | None:
    """find_runtime_socket is the runtime socket to use: the configured one ("" means none), else the first of
    RUNTIME_SOCKETS that exists, else None."""
    if configured is not None:
        return configured or None
    return next((path for path in RUNTIME_SOCKETS if exists(path)), None)


def load_settings(
    flags: Mapping[str, object | None],
    environ: Mapping[str, str],
    *,
    hostname: str,
    env_file: Path | None = None,
) -> Settings:
    """load_settings builds Settings from flags (None = not given) over environ over the environment file;
    raises SettingError (one line naming the flag, variable or file line) on bad input."""
    file = TABLE.read_env_file(env_file) if env_file is not None else {}
    values = TABLE.load(flags=flags, environ=environ, file=file, file_label=str(env_file), file_by_env=True)
    label = TABLE.source(TABLE["node_name"], flags, environ, file, str(env_file), file_by_env=True)[0] or "NODE_NAME"
    values["node_name"] = node_name_from(values["node_name"], hostname, label)
    values["server_url"] = values.pop("server")
    values["reserved"] = values.pop("system_reserved")
    settings = Settings(hostname=hostname, **values)
    if settings.throughput_duration > 10:
        raise SettingError("THROUGHPUT_DURATION: at most 10s per direction (the server's cap)")
    if settings.status_interval < settings.heartbeat_interval:
        raise SettingError("STATUS_INTERVAL: must not be shorter than HEARTBEAT_INTERVAL")
    return settings
