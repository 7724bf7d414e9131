"""What one service of a Project becomes on the runtime: the body of its container create."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from controlplane.api import Project, ServiceDef, cpu_millis, quantity_bytes

from ..runtime import ContainerCreate, EndpointConfig, HostConfig, LogConfig, Mount, NetworkingConfig
from .names import network_name, service_labels, volume_name

#: The smallest memory limit dockerd accepts (6 MiB); a Project's share is never set below it.
MIN_MEMORY: Final = 6 * 2**20


@dataclass(frozen=True, slots=True)
class LogLimits:
    """LogLimits bounds what the runtime keeps of a container's output, so that an edge's disk cannot fill.

    Both dockerd's json-file and podman's k8s-file honour max-size; podman ignores max-file (it truncates).
    """

    max_size: str = "10m"
    max_file: str = "3"


def limits(project: Project) -> tuple[int, int]:
    """limits returns (nano-CPUs, memory bytes) for each container: spec.resources shared equally among the
    services, so that the Project as a whole never takes more than it asked for; 0 means no limit."""
    resources = project.spec.resources
    count = len(project.spec.services)
    if resources is None:
        return 0, 0
    nano = cpu_millis(resources.cpu) * 1_000_000 // count if resources.cpu else 0
    memory = max(quantity_bytes(resources.memory) // count, MIN_MEMORY) if resources.memory else 0
    return nano, memory


def container_spec(project: Project, service: ServiceDef, logs: LogLimits) -> ContainerCreate:
    """container_spec is the create body of service's container: image, env, labels, the Project's network with
    the service name as alias, its volumes mounted, its share of spec.resources, bounded logs, and an init process
    as PID 1 (Docker's --init: a service without a SIGTERM handler still stops at once, zombies are reaped)."""
    nano, memory = limits(project)
    network = network_name(project.name)
    env = [f"{var.name}={var.value or ''}" for var in service.env or ()]
    mounts = [
        Mount(source=volume_name(project.name, mount.name), target=mount.mount_path)
        for mount in service.volume_mounts or ()
    ]
    return ContainerCreate(
        image=service.image,
        env=env,
        labels=service_labels(project.name, service.name),
        host_config=HostConfig(
            network_mode=network,
            mounts=mounts,
            nano_cpus=nano,
            memory=memory,
            init=True,
            log_config=LogConfig(type="json-file", config={"max-size": logs.max_size, "max-file": logs.max_file}),
        ),
        networking_config=NetworkingConfig(endpoints_config={network: EndpointConfig(aliases=[service.name])}),
    )
