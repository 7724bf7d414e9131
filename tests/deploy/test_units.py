"""The service units: `systemd-analyze verify` accepts them, they order after tailscaled, restart on failure,
run hardened, validate their settings before starting, and their settings templates are valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lablib.units import ETC, PREFIX, STATE, install_settings, load_unit, localize

UNITS = ("cara-server.service", "cara-agent.service")
BIN = Path(sys.executable).parent
#: The hardening both units use (docs/deploy.md lists them); each must stay.
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "RestrictSUIDSGID": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
}


def test_systemd_analyze_verify_accepts_both_units(tmp_path: Path) -> None:
    # Verify checks that ExecStart's program exists: the copies differ from the units only in that path, which
    # points at this venv's console scripts instead of /opt/caravanserai/bin.
    copies = []
    for name in UNITS:
        text = (load_unit(name).path).read_text().replace(f"{PREFIX}/bin/", f"{BIN}/")
        (tmp_path / name).write_text(text)
        copies.append(str(tmp_path / name))
    result = subprocess.run(["systemd-analyze", "verify", *copies], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


def test_verify_reports_a_bad_directive_on_stderr(tmp_path: Path) -> None:
    # systemd-analyze exits 0 on a directive it cannot parse: that is why the test above also wants stderr empty.
    broken = tmp_path / "cara-server.service"
    text = load_unit(UNITS[0]).path.read_text().replace(f"{PREFIX}/bin/", f"{BIN}/")
    broken.write_text(text.replace("Restart=on-failure", "Restart=sometimes"))
    result = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert "Failed to parse service restart" in result.stderr


@pytest.mark.parametrize("name", UNITS)
def test_units_start_after_tailscaled_restart_on_failure_and_are_hardened(name: str) -> None:
    unit = load_unit(name)
    for key in ("After", "Wants"):
        assert "tailscaled.service" in unit.value("Unit", key).split()
    assert unit.value("Service", "Restart") == "on-failure"
    for key, want in HARDENING.items():
        assert unit.value("Service", key) == want, key
    assert unit.value("Service", "StateDirectory") == "caravanserai"
    assert "/run/tailscale" in unit.writable_paths()
    assert f"{STATE}" in unit.writable_paths()
    argv = unit.exec_start()
    assert argv[0] == f"{PREFIX}/bin/{name.removesuffix('.service')}"
    assert any(arg.startswith(f"{ETC}/") for arg in argv)
    assert unit.value("Service", "ExecStartPre").split() == [*argv, "--check-config"]


def test_the_agent_may_reach_the_container_runtime_socket() -> None:
    paths = load_unit("cara-agent.service").writable_paths()
    assert {"/run/podman", "/run/docker.sock"} <= set(paths)


@pytest.mark.parametrize("name", UNITS)
def test_the_units_settings_templates_are_valid(name: str, tmp_path: Path) -> None:
    install_settings(tmp_path / "etc")
    argv = localize(load_unit(name).exec_start(), bin_dir=BIN, etc=tmp_path / "etc")
    env = {"PATH": "/usr/bin:/bin", "NODE_NAME": "edge1"}
    result = subprocess.run([*argv, "--check-config"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{name.removesuffix('.service')}: settings valid ({tmp_path}/etc/")
