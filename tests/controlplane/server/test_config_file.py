"""`cara-server --config server.toml`: the file's keys are the settings table's; flags and CARA_* variables
override it; an unknown key or a bad value stops the server naming the file, the key and what is wrong."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from controlplane.server.identity import Role
from controlplane.server.main import load_settings, main
from controlplane.server.settings import TABLE

GOOD = """
listen = ["100.64.0.1:8080"]
store = "sqlite:///var/lib/caravanserai/cara.db"
grace = "30s"
heartbeat_interval = 5
history_limit = 20
leader_ttl = "15s"

[roles.admin]
users = ["ops"]

[roles.scraper]
tags = ["tag:cara-scraper"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "server.toml"
    path.write_text(text)
    return path


def test_the_file_sets_every_kind_of_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARA_GRACE", raising=False)
    run = load_settings(False, write(tmp_path, GOOD), {})
    assert run.listen == ("100.64.0.1:8080",)
    assert run.store_url == "sqlite:///var/lib/caravanserai/cara.db"
    assert (run.settings.grace, run.settings.heartbeat_interval) == (timedelta(seconds=30), timedelta(seconds=5))
    assert (run.settings.history_limit, run.replica.leader_ttl) == (20, timedelta(seconds=15))
    assert run.roles.role_of("ops@", []) is Role.ADMIN
    assert run.roles.role_of("x", ["tag:cara-scraper"]) is Role.SCRAPER
    assert run.roles.role_of("x", ["tag:cara-node"]) is Role.NODE  # the default node rule stays


def test_a_flag_beats_the_environment_which_beats_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("CARA_GRACE", "50s")
    monkeypatch.setenv("CARA_HISTORY_LIMIT", "7")
    run = load_settings(False, path, {"grace": "60s"})
    assert (run.settings.grace, run.settings.history_limit) == (timedelta(seconds=60), 7)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("grase = '30s'\n", "server.toml: grase: unknown key (known: control_link_limit, data_dir, grace,"),
        ("grace = 'soon'\n", "server.toml: grace: 'soon' is not a duration"),
        ("grace = '5s'\n", "server.toml: grace: 5s must be longer than the heartbeat interval (10s)"),
        ("history_limit = 0\n", "server.toml: history_limit: 0 is out of range [1, 10000]"),
        ("history_limit = '20x'\n", "server.toml: history_limit: '20x' is not a whole number"),
        ("listen = '100.64.0.1:8080'\nlisten = 'x'\n", "server.toml: not valid TOML"),
        ("[roles.admin]\nusers = 'ops'\n", "server.toml: roles: admin.users: must be a list"),
        ("[roles.admins]\nusers = ['ops']\n", "server.toml: roles: admins: extra inputs are not permitted"),
        ("log_level = 'loud'\n", "server.toml: log_level: 'loud' is not one of debug, info, warning, error"),
    ],
    ids=[
        "unknown-key",
        "bad-duration",
        "grace-short",
        "range",
        "not-a-number",
        "bad-toml",
        "roles-type",
        "roles-key",
        "choice",
    ],
)
def test_a_bad_file_stops_the_server_naming_file_key_and_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    for setting in TABLE:
        if setting.env:
            monkeypatch.delenv(setting.env, raising=False)
    path = write(tmp_path, text)
    result = CliRunner().invoke(main, ["--config", str(path), "--check-config"])
    assert result.exit_code == 2, result.output
    assert f"Error: {path.parent}/{message}" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "nope.toml"), "--check-config"])
    assert result.exit_code == 2 and f"{tmp_path}/nope.toml: cannot read it: No such file" in result.output


def test_check_config_validates_without_starting_or_writing(tmp_path: Path) -> None:
    data = tmp_path / "state"
    path = write(tmp_path, f'data_dir = "{data}"\n[roles.admin]\nusers = ["ops"]\n')
    result = CliRunner().invoke(main, ["--config", str(path), "--check-config"])
    assert result.exit_code == 0, result.output
    assert result.output == f"cara-server: settings valid ({path}); store sqlite://{data}/cara.db\n"
    assert not data.exists()


def test_every_setting_has_a_documented_row() -> None:
    table = TABLE.markdown()
    assert all(f"`{s.name}`" in table for s in TABLE)
    docs = (Path(__file__).resolve().parents[3] / "docs" / "server.md").read_text()
    assert table in docs, "docs/server.md's settings table differs from controlplane.server.settings.TABLE"


def test_dev_mode_ignores_ts_socket_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TS_SOCKET", "/run/lab/ts.sock")
    run = load_settings(True, None, {})
    assert run.addresses == [("127.0.0.1", 8080)]


def test_the_liveness_settings_come_from_the_file_too(tmp_path: Path) -> None:
    path = write(tmp_path, "reschedule_after = '5m'\ncontrol_link_limit = '2h'\nisolation_fraction = 0.4\n")
    run = load_settings(False, path, {})
    assert (run.settings.reschedule_after, run.settings.control_link_limit) == (
        timedelta(minutes=5),
        timedelta(hours=2),
    )
    assert run.settings.isolation_fraction == 0.4
    result = CliRunner().invoke(main, ["--config", str(write(tmp_path, "isolation_fraction = 1\n")), "--check-config"])
    assert result.exit_code == 2 and "isolation_fraction: 1 is not between 0 and 1 (both excluded)" in result.output
