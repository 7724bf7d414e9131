"""Role rules, and the listen-address rules of tailnet and development mode."""

from __future__ import annotations

import pytest

from controlplane.server.binding import BindError, dev_addresses, open_sockets, tailnet_addresses
from controlplane.server.identity import Role
from controlplane.server.roles import RoleRule, RolesConfig
from mesh import Status

ROLES = RolesConfig(admin=RoleRule(users=["ops"]), viewer=RoleRule(users=["auditor@example.com"], tags=["tag:ro"]))


@pytest.mark.parametrize(
    ("login", "tags", "role"),
    [
        ("ops@", [], Role.ADMIN),
        ("ops@example.com", [], Role.ADMIN),
        ("ops", ["tag:cara-node"], Role.ADMIN),
        ("auditor@example.com", [], Role.VIEWER),
        ("auditor@", [], None),
        ("tagged-devices", ["tag:ro"], Role.VIEWER),
        ("tagged-devices", ["tag:cara-node"], Role.NODE),
        ("tagged-devices", ["tag:other"], None),
        ("", [], None),
    ],
)
def test_role_of(login: str, tags: list[str], role: Role | None) -> None:
    assert ROLES.role_of(login, tags) is role


def test_a_scraper_reads_metrics_only_when_nothing_else_names_it() -> None:
    roles = RolesConfig(viewer=RoleRule(users=["ops"]), scraper=RoleRule(tags=["tag:cara-scraper"]))
    assert roles.role_of("tagged-devices", ["tag:cara-scraper"]) is Role.SCRAPER
    assert roles.role_of("ops", ["tag:cara-scraper"]) is Role.VIEWER
    assert RolesConfig().role_of("tagged-devices", ["tag:cara-scraper"]) is None


STATUS = Status.model_validate({"BackendState": "Running", "TailscaleIPs": ["100.64.0.1", "fd7a:115c:a1e0::1"]})


def test_tailnet_addresses_default_to_every_tailnet_ip() -> None:
    assert tailnet_addresses(STATUS, []) == [("100.64.0.1", 8080), ("fd7a:115c:a1e0::1", 8080)]
    assert tailnet_addresses(STATUS, ["[fd7a:115c:a1e0::1]:9000"]) == [("fd7a:115c:a1e0::1", 9000)]


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        (
            ["10.99.1.2:8080"],
            "--listen 10.99.1.2: not a tailnet address of this machine (100.64.0.1, fd7a:115c:a1e0::1)",
        ),
        (["0.0.0.0:8080"], "--listen 0.0.0.0: not a tailnet address"),
        (["127.0.0.1:8080"], "not a tailnet address"),
        (["100.64.0.1"], "is not HOST:PORT"),
        (["host:80"], "'host' is not an IP address"),
    ],
)
def test_non_tailnet_addresses_are_refused(listen: list[str], message: str) -> None:
    with pytest.raises(BindError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tailnet_addresses(STATUS, listen)


def test_no_tailnet_address_is_refused() -> None:
    with pytest.raises(BindError, match="no tailnet address"):
        tailnet_addresses(Status.model_validate({"BackendState": "Running"}), [])


def test_dev_binds_loopback_only() -> None:
    assert dev_addresses(None) == [("127.0.0.1", 8080)]
    assert dev_addresses("[::1]:9000") == [("::1", 9000)]
    for bad in ("0.0.0.0:8080", "100.64.0.1:8080", "10.0.0.1:80"):
        with pytest.raises(BindError, match="--dev binds loopback only"):
            dev_addresses(bad)


def test_open_sockets_listens_and_reports_a_busy_port() -> None:
    sockets = open_sockets([("127.0.0.1", 0)])
    try:
        port = sockets[0].getsockname()[1]
        with pytest.raises(BindError, match=f"cannot listen on 127.0.0.1:{port}"):
            open_sockets([("127.0.0.1", port)])
    finally:
        for sock in sockets:
            sock.close()
