"""Wire models of the Docker Engine API answers the agent reads, and the bodies it sends (dockerd and podman alike).

Wire names are kept as aliases; unknown fields are ignored and `null` is tolerated, since podman's compatible API
and the various dockerd releases differ in what they add.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Version(_Wire):
    """Version is GET /version: who answers on the socket."""

    # Version: the engine's release, e.g. "20.10.24+dfsg1" (dockerd) or "4.3.1" (podman).
    version: str = Field(default="", alias="Version")
    # ApiVersion: the newest API version it speaks, e.g. "1.41".
    api_version: str = Field(default="", alias="ApiVersion")
    # Os / Arch: where it runs, e.g. "linux" / "amd64".
    os: str = Field(default="", alias="Os")
    arch: str = Field(default="", alias="Arch")


class ContainerState(_Wire):
    """ContainerState is a container's process state (inspect's `State`)."""

    # Status: created, running, paused, restarting, removing, exited or dead ("" when unknown).
    status: str = Field(default="", alias="Status")
    # Running: whether the process runs now (true while paused, too).
    running: bool = Field(default=False, alias="Running")
    # ExitCode: the last exit code; 0 while running or never started.
    exit_code: int = Field(default=0, alias="ExitCode")
    # OOMKilled: the kernel's OOM killer ended it (memory limit reached).
    oom_killed: bool = Field(default=False, alias="OOMKilled")
    # Error: the runtime's words when starting it failed; "" otherwise.
    error: str = Field(default="", alias="Error")
    # FinishedAt: when the process last ended; year 1 ("0001-01-01T00:00:00Z") or None means never.
    finished_at: datetime | None = Field(default=None, alias="FinishedAt")


class EndpointSettings(_Wire):
    """EndpointSettings is a container's attachment to one network."""

    # IPAddress: its IPv4 address on that network; "" while not running.
    ip_address: str = Field(default="", alias="IPAddress")
    # Aliases: the names it answers to on that network (podman omits the container's own short ID).
    aliases: list[str] | None = Field(default=None, alias="Aliases")


class NetworkSettings(_Wire):
    # Networks: network name → attachment; null for a container with no network.
    networks: dict[str, EndpointSettings] | None = Field(default=None, alias="Networks")


class ContainerConfig(_Wire):
    # Image: the image as it was asked for, e.g. "registry:5000/web:1".
    image: str = Field(default="", alias="Image")
    # Labels: the container's labels; null when none.
    labels: dict[str, str] | None = Field(default=None, alias="Labels")
    # Tty: a TTY container's logs are one raw stream, not multiplexed.
    tty: bool = Field(default=False, alias="Tty")


class ContainerInspect(_Wire):
    """ContainerInspect is GET /containers/{id}/json, the fields the agent reads."""

    id: str = Field(alias="Id")
    # Name: with a leading "/" on dockerd ("/demo-web"); podman writes it the same way on the compat API.
    name: str = Field(default="", alias="Name")
    state: ContainerState = Field(default_factory=ContainerState, alias="State")
    config: ContainerConfig = Field(default_factory=ContainerConfig, alias="Config")
    network_settings: NetworkSettings = Field(default_factory=NetworkSettings, alias="NetworkSettings")

    def ip_on(self, network: str) -> str | None:
        """ip_on is the container's IPv4 address on network, None when not attached or not running."""
        endpoint = (self.network_settings.networks or {}).get(network)
        return endpoint.ip_address if endpoint is not None and endpoint.ip_address else None


class ContainerSummary(_Wire):
    """ContainerSummary is one entry of GET /containers/json."""

    id: str = Field(alias="Id")
    # Names: with leading "/" ("/demo-web").
    names: list[str] = Field(default_factory=list, alias="Names")
    labels: dict[str, str] | None = Field(default=None, alias="Labels")
    # State: running, exited, created, ...
    state: str = Field(default="", alias="State")


class Network(_Wire):
    """Network is GET /networks/{name} (and an entry of GET /networks)."""

    id: str = Field(default="", alias="Id")
    name: str = Field(default="", alias="Name")
    labels: dict[str, str] | None = Field(default=None, alias="Labels")


class Volume(_Wire):
    """Volume is one named volume."""

    name: str = Field(alias="Name")
    labels: dict[str, str] | None = Field(default=None, alias="Labels")


class VolumeList(_Wire):
    """VolumeList is GET /volumes; podman and dockerd both may send `null` for an empty list."""

    volumes: list[Volume] | None = Field(default=None, alias="Volumes")


class Mount(_Wire):
    """Mount is one entry of HostConfig.Mounts: a named volume at a path."""

    type: str = Field(default="volume", alias="Type")
    source: str = Field(alias="Source")
    target: str = Field(alias="Target")


class LogConfig(_Wire):
    """LogConfig is the log driver and its options (max-size, max-file bound what an edge keeps)."""

    type: str = Field(alias="Type")
    config: dict[str, str] = Field(default_factory=dict, alias="Config")


class HostConfig(_Wire):
    # NetworkMode: the network the container joins first (the Project's).
    network_mode: str = Field(alias="NetworkMode")
    mounts: list[Mount] = Field(default_factory=list, alias="Mounts")
    # NanoCpus: CPU limit in 1e-9 CPUs; 0 means none.
    nano_cpus: int = Field(default=0, alias="NanoCpus")
    # Memory: memory limit in bytes; 0 means none.
    memory: int = Field(default=0, alias="Memory")
    # Init: run an init (docker-init / catatonit) as PID 1 that forwards signals to the command.
    init: bool | None = Field(default=None, alias="Init")
    log_config: LogConfig | None = Field(default=None, alias="LogConfig")


class EndpointConfig(_Wire):
    aliases: list[str] = Field(default_factory=list, alias="Aliases")


class NetworkingConfig(_Wire):
    endpoints_config: dict[str, EndpointConfig] = Field(default_factory=dict, alias="EndpointsConfig")


class ContainerCreate(_Wire):
    """ContainerCreate is the body of POST /containers/create."""

    image: str = Field(alias="Image")
    # Cmd: replaces the image's command; None keeps the image's own (Projects never set it).
    cmd: list[str] | None = Field(default=None, alias="Cmd")
    env: list[str] = Field(default_factory=list, alias="Env")
    labels: dict[str, str] = Field(default_factory=dict, alias="Labels")
    host_config: HostConfig = Field(alias="HostConfig")
    networking_config: NetworkingConfig = Field(default_factory=NetworkingConfig, alias="NetworkingConfig")


class CreatedId(_Wire):
    """CreatedId is the answer of a create: the new object's ID."""

    id: str = Field(default="", alias="Id")
