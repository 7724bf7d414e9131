"""Where the server listens: its own tailnet addresses (read from tailscaled), or loopback in development mode."""

from __future__ import annotations

import ipaddress
import socket

from mesh import LocalClient, Status

from .settings import DEFAULT_PORT


class BindError(ValueError):
    """BindError is raised when the requested listen address is not allowed; the message names it and why."""


def parse_listen(value: str) -> tuple[str, int]:
    """parse_listen reads HOST:PORT or [V6]:PORT; raises BindError naming what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise BindError(f"--listen {value!r} is not HOST:PORT (e.g. 100.64.0.1:8080)")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise BindError(f"--listen {value!r}: {host!r} is not an IP address") from None
    return host, int(port)


def dev_addresses(listen: str | None) -> list[tuple[str, int]]:
    """dev_addresses is the loopback address of development mode; anything else is refused."""
    host, port = parse_listen(listen or f"127.0.0.1:{DEFAULT_PORT}")
    if not ipaddress.ip_address(host).is_loopback:
        raise BindError(f"--listen {host}: --dev binds loopback only (127.0.0.0/8 or ::1), never a real interface")
    return [(host, port)]


def tailnet_addresses(status: Status, listen: list[str]) -> list[tuple[str, int]]:
    """tailnet_addresses returns this machine's tailnet IPs on :8080, or the --listen ones if all are tailnet IPs."""
    own = [str(ip) for ip in status.tailscale_ips]
    if not own:
        raise BindError("tailscaled reports no tailnet address for this machine; is it logged in (tailscale up)?")
    if not listen:
        return [(ip, DEFAULT_PORT) for ip in own]
    chosen = [parse_listen(value) for value in listen]
    for host, _ in chosen:
        if str(ipaddress.ip_address(host)) not in own:
            raise BindError(
                f"--listen {host}: not a tailnet address of this machine ({', '.join(own)}); cara-server listens "
                "on the tailnet only (use --dev for loopback development)"
            )
    return chosen


async def read_tailnet_addresses(local: LocalClient, listen: list[str]) -> list[tuple[str, int]]:
    """read_tailnet_addresses asks tailscaled for this machine's addresses (it must be Running)."""
    status = (await local.status_without_peers()).require_running()
    return tailnet_addresses(status, listen)


def open_sockets(addresses: list[tuple[str, int]]) -> list[socket.socket]:
    """open_sockets binds and listens on every address (so one server serves IPv4 and IPv6 alike)."""
    sockets: list[socket.socket] = []
    for host, port in addresses:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on an accepted socket only when the socket says it is
        # TCP, and without it Nagle plus delayed ACK holds a response's body (written after its head) ~40 ms.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            for opened in sockets:
                opened.close()
            raise BindError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        sock.listen(2048)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets
