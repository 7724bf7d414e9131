"""The agent's container runtime: a Docker Engine API client (dockerd or podman) and its models and errors."""

from ._client import API_VERSION, RuntimeClient, split_image, unreachable_without_socket
from ._exceptions import (
    ImagePullFailed,
    NoSuchObject,
    ObjectConflict,
    RuntimeAPIError,
    RuntimeFailure,
    RuntimeUnreachable,
)
from ._logs import demux
from ._models import (
    ContainerCreate,
    ContainerInspect,
    ContainerState,
    ContainerSummary,
    EndpointConfig,
    HostConfig,
    LogConfig,
    Mount,
    NetworkingConfig,
    Version,
)

__all__ = [
    "API_VERSION",
    "ContainerCreate",
    "ContainerInspect",
    "ContainerState",
    "ContainerSummary",
    "EndpointConfig",
    "HostConfig",
    "ImagePullFailed",
    "LogConfig",
    "Mount",
    "NetworkingConfig",
    "NoSuchObject",
    "ObjectConflict",
    "RuntimeAPIError",
    "RuntimeClient",
    "RuntimeFailure",
    "RuntimeUnreachable",
    "Version",
    "demux",
    "split_image",
    "unreachable_without_socket",
]
