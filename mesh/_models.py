"""Pydantic mirrors of the LocalAPI wire types: ipnstate.Status/PeerStatus, apitype.WhoIsResponse, PingResult.

Wire names are kept as aliases; unknown fields are ignored (new daemons keep adding them); and `null`, which Go
writes for every nil slice, map and pointer, reads as the field's zero value. Go's zero time
`0001-01-01T00:00:00Z` reads as `None` ("never").
"""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address, ip_interface
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from ._exceptions import NotRunning

#: A tailnet address (100.64.0.0/10 or fd7a:115c:a1e0::/48 in practice).
IPAddress = IPv4Address | IPv6Address


def _go_time(value: Any) -> datetime | None:
    """_go_time parses a Go time.Time as JSON; the zero time and null mean "never"."""
    if value is None or value == "" or (isinstance(value, str) and value.startswith("0001-01-01")):
        return None
    if isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _address(value: Any) -> Any:
    """_address accepts a bare address or a CIDR (tailcfg.Node.Addresses are `100.64.0.2/32`)."""
    if isinstance(value, str) and "/" in value:
        return ip_interface(value).ip
    return value


#: A Go time.Time; `None` when the daemon wrote the zero time (never happened / unknown).
GoTime = Annotated[datetime | None, BeforeValidator(_go_time)]

#: An address that may come as a /32 or /128 prefix.
Address = Annotated[IPAddress, BeforeValidator(_address)]


class LocalModel(BaseModel):
    """LocalModel is the base of every LocalAPI model: wire-name aliases, unknown fields ignored, null is zero."""

    model_config = ConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_zero(cls, data: Any) -> Any:
        # Go marshals nil slices/maps/pointers as null; dropping them lets each field's default (its zero) apply.
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class UserProfile(LocalModel):
    """UserProfile (tailcfg.UserProfile) is a tailnet user as the coordination server describes it."""

    # ID: the user's numeric ID; 0 when unknown.
    id: int = Field(default=0, alias="ID")
    # LoginName: e.g. "ops@" or "ops" with headscale; "tagged-devices" for nodes owned by tags.
    login_name: str = Field(default="", alias="LoginName")
    # DisplayName: human-readable name; "" when the server sets none.
    display_name: str = Field(default="", alias="DisplayName")
    # ProfilePicURL: avatar URL; "" when none.
    profile_pic_url: str = Field(default="", alias="ProfilePicURL")


class TailnetInfo(LocalModel):
    """TailnetInfo (ipnstate.TailnetStatus) is the tailnet this node is joined to."""

    # Name: the tailnet's name; with headscale, the host of server_url.
    name: str = Field(default="", alias="Name")
    # MagicDNSSuffix: the MagicDNS base domain without dots at either end ("tailnet.test"); "" when off.
    magic_dns_suffix: str = Field(default="", alias="MagicDNSSuffix")
    # MagicDNSEnabled: whether the coordination server enabled MagicDNS.
    magic_dns_enabled: bool = Field(default=False, alias="MagicDNSEnabled")


class PeerStatus(LocalModel):
    """PeerStatus (ipnstate.PeerStatus) is one node (Self or a peer) as this tailscaled sees it.

    The path fields (`CurAddr`, `PeerRelay`, `Active`) are only filled once this node has sent traffic to the
    peer; `Relay` is always the peer's *home* DERP region, even when the path is direct.
    """

    # ID: the stable node ID ("n..." on tailscale.com; headscale's numeric ID as text); "" if unknown.
    id: str = Field(default="", alias="ID")
    # PublicKey: the node key, "nodekey:<hex>".
    public_key: str = Field(default="", alias="PublicKey")
    # HostName: the OS host name the node reported (not necessarily unique, not a DNS name).
    host_name: str = Field(default="", alias="HostName")
    # DNSName: the MagicDNS FQDN *with* a trailing dot ("edge1.tailnet.test."); "" before the first netmap.
    dns_name: str = Field(default="", alias="DNSName")
    # OS: "linux", "macOS", ...; "" when unknown.
    os: str = Field(default="", alias="OS")
    # UserID: owner's user ID; a key into Status.User; 0 when unknown.
    user_id: int = Field(default=0, alias="UserID")
    # TailscaleIPs: the node's tailnet addresses (IPv4 first in practice); empty before login.
    tailscale_ips: list[IPAddress] = Field(default_factory=list, alias="TailscaleIPs")
    # Tags: ACL tags ("tag:cara-node"); omitted on the wire (empty here) for user-owned nodes.
    tags: list[str] = Field(default_factory=list, alias="Tags")
    # Addrs: the node's advertised UDP endpoints ("ip:port"); empty when none are known.
    addrs: list[str] = Field(default_factory=list, alias="Addrs")
    # CurAddr: the trusted direct UDP endpoint in use ("ip:port"); "" when not direct or trust (6.5 s) lapsed.
    cur_addr: str = Field(default="", alias="CurAddr")
    # Relay: the peer's home DERP region code (on Self: this node's home region); "" when none.
    relay: str = Field(default="", alias="Relay")
    # PeerRelay: the peer-relay endpoint ("ip:port:vni:N") carrying the path; "" when none.
    peer_relay: str = Field(default="", alias="PeerRelay")
    # RxBytes: bytes received from this peer since the daemon started.
    rx_bytes: int = Field(default=0, alias="RxBytes")
    # TxBytes: bytes sent to this peer since the daemon started.
    tx_bytes: int = Field(default=0, alias="TxBytes")
    # Created: when the node was registered with the coordination server; None if unknown.
    created: GoTime = Field(default=None, alias="Created")
    # LastWrite: last time this node wrote a WireGuard packet to the peer; None if never.
    last_write: GoTime = Field(default=None, alias="LastWrite")
    # LastSeen: last time the peer was connected to control; only meaningful while offline; None if unknown.
    last_seen: GoTime = Field(default=None, alias="LastSeen")
    # LastHandshake: last WireGuard handshake with the peer; None if never.
    last_handshake: GoTime = Field(default=None, alias="LastHandshake")
    # Online: whether the coordination server says the node is connected.
    online: bool = Field(default=False, alias="Online")
    # Active: traffic was sent to the peer within magicsock's sessionActiveTimeout (45 s).
    active: bool = Field(default=False, alias="Active")
    # ExitNode: this peer is the exit node in use.
    exit_node: bool = Field(default=False, alias="ExitNode")
    # InNetworkMap: the peer was in the latest netmap from control.
    in_network_map: bool = Field(default=False, alias="InNetworkMap")
    # InMagicSock: magicsock tracks the peer.
    in_magic_sock: bool = Field(default=False, alias="InMagicSock")
    # InEngine: the WireGuard engine tracks the peer.
    in_engine: bool = Field(default=False, alias="InEngine")
    # Expired: the node key has expired (the peer cannot be reached until re-authenticated).
    expired: bool = Field(default=False, alias="Expired")
    # KeyExpiry: when the node key expires; None when it never does.
    key_expiry: GoTime = Field(default=None, alias="KeyExpiry")

    @property
    def dns_name_short(self) -> str:
        """dns_name_short is the first label of the MagicDNS name ("edge1"); "" when there is no DNS name."""
        return self.dns_name.split(".", 1)[0]

    @property
    def fqdn(self) -> str:
        """fqdn is the MagicDNS name without the trailing dot ("edge1.tailnet.test")."""
        return self.dns_name.rstrip(".")

    @property
    def ipv4(self) -> IPv4Address | None:
        """ipv4 is the node's first tailnet IPv4 address, or None."""
        return next((ip for ip in self.tailscale_ips if isinstance(ip, IPv4Address)), None)

    def has_tag(self, tag: str) -> bool:
        """has_tag reports whether the node carries the ACL tag (with or without the "tag:" prefix)."""
        wanted = tag if tag.startswith("tag:") else f"tag:{tag}"
        return wanted in self.tags

    @property
    def is_direct(self) -> bool:
        """is_direct reports a trusted direct UDP path right now (CurAddr set)."""
        return self.cur_addr != ""

    @property
    def is_online(self) -> bool:
        """is_online reports whether control says the peer is connected and it is in our netmap."""
        return self.online and self.in_network_map


class Status(LocalModel):
    """Status (ipnstate.Status) is the whole tailnet as this tailscaled sees it (`tailscale status --json`)."""

    # Version: the daemon's long version ("1.98.10" or "1.98.10-ERR-BuildInfo" for unstamped builds).
    version: str = Field(default="", alias="Version")
    # TUN: whether a TUN device is used (false in userspace-networking mode).
    tun: bool = Field(default=False, alias="TUN")
    # BackendState: NoState, NeedsLogin, NeedsMachineAuth, Stopped, Starting or Running.
    backend_state: str = Field(default="", alias="BackendState")
    # HaveNodeKey: whether the node has a node key (omitted when false).
    have_node_key: bool = Field(default=False, alias="HaveNodeKey")
    # AuthURL: the URL to visit to log in while NeedsLogin; "" otherwise.
    auth_url: str = Field(default="", alias="AuthURL")
    # TailscaleIPs: this node's own tailnet addresses; empty before login.
    tailscale_ips: list[IPAddress] = Field(default_factory=list, alias="TailscaleIPs")
    # Self: this node; None before the first netmap.
    self_: PeerStatus | None = Field(default=None, alias="Self")
    # Health: human-readable health warnings; empty when healthy.
    health: list[str] = Field(default_factory=list, alias="Health")
    # MagicDNSSuffix: deprecated mirror of CurrentTailnet.MagicDNSSuffix.
    magic_dns_suffix: str = Field(default="", alias="MagicDNSSuffix")
    # CurrentTailnet: the tailnet joined; None when not connected.
    current_tailnet: TailnetInfo | None = Field(default=None, alias="CurrentTailnet")
    # CertDomains: domains this node can get TLS certificates for; empty with headscale by default.
    cert_domains: list[str] = Field(default_factory=list, alias="CertDomains")
    # Peer: every other node in the netmap, keyed by "nodekey:<hex>"; empty with peers=false or no peers.
    peer: dict[str, PeerStatus] = Field(default_factory=dict, alias="Peer")
    # User: user profiles keyed by decimal user ID (as a string on the wire).
    user: dict[int, UserProfile] = Field(default_factory=dict, alias="User")

    @property
    def is_running(self) -> bool:
        """is_running reports BackendState == "Running"."""
        return self.backend_state == "Running"

    @property
    def peers(self) -> list[PeerStatus]:
        """peers is the peer list ordered by DNS name, then host name."""
        return sorted(self.peer.values(), key=lambda p: (p.dns_name, p.host_name))

    def require_running(self) -> Status:
        """require_running returns self when Running; raises NotRunning (with the login URL if any) otherwise."""
        if not self.is_running:
            raise NotRunning(self.backend_state, self.auth_url)
        return self


class Hostinfo(LocalModel):
    """Hostinfo (tailcfg.Hostinfo) is what a node reports about its host; only the fields mesh uses."""

    # Hostname: the OS host name.
    hostname: str = Field(default="", alias="Hostname")
    # OS: "linux", "macOS", ...
    os: str = Field(default="", alias="OS")
    # IPNVersion: the tailscaled version of the node.
    ipn_version: str = Field(default="", alias="IPNVersion")


class WhoIsNode(LocalModel):
    """WhoIsNode (tailcfg.Node) is the node owning an address, as the netmap describes it; the fields mesh uses."""

    # ID: the numeric node ID; 0 when unknown.
    id: int = Field(default=0, alias="ID")
    # StableID: the stable node ID as text.
    stable_id: str = Field(default="", alias="StableID")
    # Name: the MagicDNS FQDN with a trailing dot.
    name: str = Field(default="", alias="Name")
    # User: the owning user's ID (for tagged nodes, the tagged-devices pseudo-user).
    user: int = Field(default=0, alias="User")
    # Key: the node key, "nodekey:<hex>".
    key: str = Field(default="", alias="Key")
    # Addresses: the node's tailnet addresses (CIDRs like 100.64.0.2/32 on the wire).
    addresses: list[Address] = Field(default_factory=list, alias="Addresses")
    # Tags: ACL tags; empty for user-owned nodes.
    tags: list[str] = Field(default_factory=list, alias="Tags")
    # Hostinfo: what the node reports about its host.
    hostinfo: Hostinfo = Field(default_factory=Hostinfo, alias="Hostinfo")
    # Online: whether control says the node is connected; None when control did not say.
    online: bool | None = Field(default=None, alias="Online")
    # LastSeen: when the node was last connected to control; None if unknown.
    last_seen: GoTime = Field(default=None, alias="LastSeen")
    # HomeDERP: the node's home DERP region ID; 0 when none.
    home_derp: int = Field(default=0, alias="HomeDERP")
    # Endpoints: the node's advertised UDP endpoints.
    endpoints: list[str] = Field(default_factory=list, alias="Endpoints")
    # Expired: the node key has expired.
    expired: bool = Field(default=False, alias="Expired")

    @property
    def fqdn(self) -> str:
        """fqdn is the MagicDNS name without the trailing dot."""
        return self.name.rstrip(".")


class WhoIsResponse(LocalModel):
    """WhoIsResponse (apitype.WhoIsResponse) is who owns a tailnet address: the node, its user, capabilities."""

    # Node: the node owning the address.
    node: WhoIsNode = Field(default_factory=WhoIsNode, alias="Node")
    # UserProfile: the node's owner ("tagged-devices" for tag-owned nodes).
    user_profile: UserProfile = Field(default_factory=UserProfile, alias="UserProfile")
    # CapMap: peer capabilities granted to the caller by policy, as raw JSON values; empty when none.
    cap_map: dict[str, list[Any]] = Field(default_factory=dict, alias="CapMap")

    @property
    def is_tagged(self) -> bool:
        """is_tagged reports a node owned by ACL tags rather than by a user."""
        return bool(self.node.tags)


class PingResult(LocalModel):
    """PingResult (ipnstate.PingResult) is one ping's answer; exactly one of Endpoint, PeerRelay, DERP is set."""

    # IP: the pinged tailnet IP.
    ip: str = Field(default="", alias="IP")
    # NodeIP: the node's first tailnet IP.
    node_ip: str = Field(default="", alias="NodeIP")
    # NodeName: the node's MagicDNS name (first label) or host name.
    node_name: str = Field(default="", alias="NodeName")
    # Err: why the ping failed ("" on success).
    err: str = Field(default="", alias="Err")
    # LatencySeconds: round-trip time in seconds; 0 on failure.
    latency_seconds: float = Field(default=0.0, alias="LatencySeconds")
    # Endpoint: the "ip:port" a *direct* disco pong came from; "" for DERP, peer relay, TSMP and ICMP.
    endpoint: str = Field(default="", alias="Endpoint")
    # PeerRelay: "ip:port:vni:N" when a peer relay carried the pong; "" otherwise.
    peer_relay: str = Field(default="", alias="PeerRelay")
    # DERPRegionID: the DERP region that carried the pong; 0 when not via DERP.
    derp_region_id: int = Field(default=0, alias="DERPRegionID")
    # DERPRegionCode: that region's code ("headscale" in the lab); "" when not via DERP.
    derp_region_code: str = Field(default="", alias="DERPRegionCode")
    # PeerAPIPort: the peer's PeerAPI port (peerapi pings only); 0 otherwise.
    peer_api_port: int = Field(default=0, alias="PeerAPIPort")
    # IsLocalIP: the IP belongs to this node itself.
    is_local_ip: bool = Field(default=False, alias="IsLocalIP")

    @property
    def ok(self) -> bool:
        """ok reports a pong (no Err)."""
        return self.err == ""

    @property
    def latency_ms(self) -> float:
        """latency_ms is the round-trip time in milliseconds."""
        return self.latency_seconds * 1000.0

    @property
    def is_direct(self) -> bool:
        """is_direct reports a pong that came straight from the peer's UDP endpoint."""
        return self.ok and self.endpoint != ""

    @property
    def is_derp(self) -> bool:
        """is_derp reports a pong relayed by a DERP server."""
        return self.ok and self.derp_region_id != 0
