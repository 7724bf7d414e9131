"""LocalClient: request shape, decoding of captured answers, and every error path typed (some for real)."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

import httpx
import pytest

from mesh import (
    DEFAULT_SOCKET,
    AccessDenied,
    DaemonUnreachable,
    LocalAPIError,
    LocalClient,
    MeshError,
    NotRunning,
    PeerNotFound,
    PingType,
    PreconditionFailed,
    RequestTimeout,
    socket_path,
)

from .captured import wire
from .conftest import ClientFactory


async def test_status_request_has_the_host_and_headers_tailscaled_requires(fake_client: ClientFactory) -> None:
    client, daemon = fake_client({"GET status": (200, "edge1-status.json")})
    await client.status()
    (request,) = daemon.requests
    assert str(request.url) == "http://local-tailscaled.sock/localapi/v0/status"
    assert request.headers["host"] == "local-tailscaled.sock"
    assert request.headers["tailscale-cap"] == "138"
    assert "origin" not in request.headers and "referer" not in request.headers


async def test_status_decodes_the_captured_answer(fake_client: ClientFactory) -> None:
    client, _ = fake_client({"GET status": (200, "edge1-status.json")})
    status = await client.status()
    captured = wire("edge1-status.json")
    assert status.is_running
    assert status.self_ is not None and status.self_.dns_name == captured["Self"]["DNSName"] == "edge1.tailnet.test."
    assert sorted(p.host_name for p in status.peers) == ["cara-server", "edge2", "edge3", "operator"]
    assert status.tailscale_ips == [ip_address(ip) for ip in captured["TailscaleIPs"]]
    assert status.current_tailnet is not None and status.current_tailnet.magic_dns_suffix == "tailnet.test"


async def test_status_without_peers_asks_for_no_peers(fake_client: ClientFactory) -> None:
    client, daemon = fake_client({"GET status": (200, "edge1-status-nopeers.json")})
    status = await client.status_without_peers()
    assert daemon.requests[0].url.params["peers"] == "false"
    assert status.peer == {} and status.is_running


async def test_whois_returns_node_and_user(fake_client: ClientFactory) -> None:
    client, daemon = fake_client({"GET whois": (200, "edge1-whois-edge2.json")})
    edge2_ip = wire("edge1-status.json")["Peer"]
    ip = next(p["TailscaleIPs"][0] for p in edge2_ip.values() if p["HostName"] == "edge2")
    who = await client.whois(ip_address(ip))
    assert daemon.requests[0].url.params["addr"] == ip
    assert who.node.fqdn == "edge2.tailnet.test"
    assert who.node.tags == ["tag:cara-node"] and who.is_tagged
    assert who.user_profile.login_name == "tagged-devices"
    assert ip_address(ip) in who.node.addresses


async def test_whois_of_a_user_owned_node_names_the_user(fake_client: ClientFactory) -> None:
    client, _ = fake_client({"GET whois": (200, "edge1-whois-operator.json")})
    who = await client.whois("100.64.0.2:443")
    assert who.user_profile.login_name == "ops"
    assert not who.is_tagged and who.node.hostinfo.hostname == "operator"


async def test_whois_404_is_peer_not_found_with_the_daemons_message(fake_client: ClientFactory) -> None:
    client, _ = fake_client({"GET whois": (404, "edge1-whois-unknown.txt")})
    with pytest.raises(PeerNotFound) as caught:
        await client.whois("100.100.200.200")
    assert caught.value.status == 404
    assert caught.value.message == "no match for IP:port"
    assert isinstance(caught.value, LocalAPIError)


async def test_403_is_access_denied(fake_client: ClientFactory) -> None:
    client, _ = fake_client({"GET status": (403, "edge1-bad-host.txt")})
    with pytest.raises(AccessDenied, match="403: invalid localapi request"):
        await client.status()


async def test_412_is_precondition_failed_and_reads_a_json_error(fake_client: ClientFactory) -> None:
    # The daemon's documented JSON error form (localapi WriteErrorJSON): {"error": "..."}.
    client, _ = fake_client({"GET status": (412, b'{"error":"not logged in"}\n')})
    with pytest.raises(PreconditionFailed) as caught:
        await client.status()
    assert caught.value.message == "not logged in"


async def test_any_other_status_is_a_plain_local_api_error(fake_client: ClientFactory) -> None:
    client, _ = fake_client({"POST ping": (400, "edge1-ping-bad-ip.txt")})
    with pytest.raises(LocalAPIError) as caught:
        await client.ping("not-an-ip")
    assert type(caught.value) is LocalAPIError
    assert (caught.value.status, caught.value.message) == (400, "invalid IP")


async def test_ping_posts_ip_and_type_and_decodes_the_pong(fake_client: ClientFactory) -> None:
    client, daemon = fake_client({"POST ping": (200, "edge1-ping-edge2-direct.json")})
    result = await client.ping("100.64.0.4", PingType.DISCO)
    (request,) = daemon.requests
    assert request.method == "POST"
    assert dict(request.url.params) == {"ip": "100.64.0.4", "type": "disco"}
    assert result.is_direct and result.endpoint == wire("edge1-ping-edge2-direct.json")["Endpoint"]
    assert result.latency_ms > 0


async def test_ping_sends_tsmp_by_its_wire_name(fake_client: ClientFactory) -> None:
    client, daemon = fake_client({"POST ping": (200, "edge1-ping-edge2-tsmp.json")})
    result = await client.ping("100.64.0.4", PingType.TSMP)
    assert daemon.requests[0].url.params["type"] == "TSMP"
    assert result.ok and not result.is_direct and not result.is_derp


async def test_ping_carries_its_own_timeout(fake_client: ClientFactory) -> None:
    client, daemon = fake_client({"POST ping": (200, "edge1-ping-edge2-direct.json")})
    await client.ping("100.64.0.4", timeout=1.5)
    assert daemon.requests[0].extensions["timeout"]["read"] == 1.5


async def test_a_ping_without_pong_is_request_timeout(fake_client: ClientFactory) -> None:
    client, _ = fake_client({"POST ping": httpx.ReadTimeout("timed out")})
    with pytest.raises(RequestTimeout, match="did not answer in time"):
        await client.ping("100.64.0.4", timeout=0.1)


async def test_needs_login_status_decodes_and_require_running_says_so(fake_client: ClientFactory) -> None:
    client, _ = fake_client({"GET status": (200, "fresh-status-needslogin.json")})
    status = await client.status()
    assert status.backend_state == "NeedsLogin" and status.tailscale_ips == [] and status.peer == {}
    with pytest.raises(NotRunning, match=r"BackendState=NeedsLogin.*tailscale up") as caught:
        status.require_running()
    assert caught.value.state == "NeedsLogin"


# --- the socket, for real -------------------------------------------------------------------------------------


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="mesh", dir="/tmp") as name:
        yield Path(name)


async def test_a_missing_socket_is_daemon_unreachable_with_a_hint(short_tmp: Path) -> None:
    path = str(short_tmp / "nothing-here.sock")
    async with LocalClient(path) as client:
        with pytest.raises(DaemonUnreachable) as caught:
            await client.status()
    assert caught.value.socket == path
    assert caught.value.reason == "no such socket"
    assert "TS_SOCKET" in str(caught.value) and path in str(caught.value)


async def test_a_socket_nobody_listens_on_is_daemon_unreachable(short_tmp: Path) -> None:
    path = str(short_tmp / "dead.sock")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(path)  # bound, never listening: what a crashed daemon leaves behind
        async with LocalClient(path) as client:
            with pytest.raises(DaemonUnreachable, match="connection refused"):
                await client.status()


def _status_error_as_nobody(path: str) -> str:
    """_status_error_as_nobody asks for status from a forked child that dropped root, and returns what it raised."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no pytest, no running loop; report over the pipe and leave without cleanup
        outcome = "no error"
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)

            async def ask() -> None:
                async with LocalClient(path) as client:
                    await client.status()

            asyncio.run(ask())
        except DaemonUnreachable as exc:
            outcome = f"DaemonUnreachable: {exc.reason}"
        except BaseException as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        os.write(write_end, outcome.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        outcome = pipe.read()
    os.waitpid(pid, 0)
    return outcome


def test_a_socket_the_caller_may_not_open_is_daemon_unreachable_permission_denied(short_tmp: Path) -> None:
    path = str(short_tmp / "private.sock")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(path)
        sock.listen()
        os.chmod(path, 0o600)  # tailscaled makes its socket 0666; this one only root may open
        assert _status_error_as_nobody(path) == "DaemonUnreachable: permission denied"


def test_socket_is_the_argument_then_ts_socket_then_the_default() -> None:
    assert socket_path("/run/a.sock", {"TS_SOCKET": "/run/b.sock"}) == "/run/a.sock"
    assert socket_path(None, {"TS_SOCKET": "/run/b.sock"}) == "/run/b.sock"
    assert socket_path(None, {}) == DEFAULT_SOCKET == "/var/run/tailscale/tailscaled.sock"


def test_local_client_reads_ts_socket_when_given_no_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TS_SOCKET", "/run/lab/edge1/ts.sock")
    assert LocalClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))).socket == "/run/lab/edge1/ts.sock"


def test_every_error_is_a_mesh_error() -> None:
    for error in (DaemonUnreachable, RequestTimeout, NotRunning, LocalAPIError, AccessDenied, PeerNotFound):
        assert issubclass(error, MeshError)
