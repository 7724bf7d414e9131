"""mesh: the tailnet as one machine sees it, through tailscaled's LocalAPI (status, whois, ping, paths, names)."""

from ._client import BASE_URL, CAPABILITY_VERSION, LocalClient, PingType
from ._exceptions import (
    AccessDenied,
    DaemonUnreachable,
    LocalAPIError,
    MeshError,
    NotRunning,
    PeerNotFound,
    PeerUnknown,
    PreconditionFailed,
    RequestTimeout,
)
from ._models import (
    Hostinfo,
    IPAddress,
    PeerStatus,
    PingResult,
    Status,
    TailnetInfo,
    UserProfile,
    WhoIsNode,
    WhoIsResponse,
)
from ._names import SelfIdentity, find_peer, find_peers, resolve, self_identity
from ._paths import Path, PathMode, Via, classify_peer, classify_pong, classify_pongs, probe_path, wait_for_mode
from ._reasons import RelayExplanation, RelayReason, explain_path
from ._transports import DEFAULT_SOCKET, SOCKET_ENV, socket_path

__all__ = [
    "BASE_URL",
    "CAPABILITY_VERSION",
    "DEFAULT_SOCKET",
    "SOCKET_ENV",
    "AccessDenied",
    "DaemonUnreachable",
    "Hostinfo",
    "IPAddress",
    "LocalAPIError",
    "LocalClient",
    "MeshError",
    "NotRunning",
    "Path",
    "PathMode",
    "PeerNotFound",
    "PeerStatus",
    "PeerUnknown",
    "PingResult",
    "PingType",
    "PreconditionFailed",
    "RelayExplanation",
    "RelayReason",
    "RequestTimeout",
    "SelfIdentity",
    "Status",
    "TailnetInfo",
    "UserProfile",
    "Via",
    "WhoIsNode",
    "WhoIsResponse",
    "classify_peer",
    "classify_pong",
    "classify_pongs",
    "explain_path",
    "find_peer",
    "find_peers",
    "probe_path",
    "resolve",
    "self_identity",
    "socket_path",
    "wait_for_mode",
]
