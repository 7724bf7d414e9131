"""Settings: flags over environment over defaults, and one clear line naming the variable for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.main import main
from agent.settings import TABLE, Reservation, SettingError, find_runtime_socket, load_settings, parse_reservation


def load(env: dict[str, str] | None = None, hostname: str = "Edge-Box", **flags: str | None) -> object:
    return load_settings(flags, env or {}, hostname=hostname)


def test_defaults_take_the_lowercased_hostname_and_resolve_cara_server() -> None:
    s = load_settings({}, {}, hostname="Edge-Box")
    assert (s.node_name, s.hostname, s.server_url, s.server_name, s.server_port) == (
        "edge-box",
        "Edge-Box",
        None,
        "cara-server",
        8080,
    )
    assert (s.heartbeat_interval, s.status_interval, s.throughput_interval) == (10.0, 60.0, 1800.0)
    assert (s.throughput_duration, s.throughput_streams, s.listen_port, s.listen_address) == (3.0, 4, 9090, None)
    assert s.reserved == Reservation()


@pytest.mark.parametrize(
    ("raw", "seconds"), [("30s", 30.0), ("1m", 60.0), ("1m30s", 90.0), ("15", 15.0)], ids=["30s", "1m", "1m30s", "bare"]
)
def test_heartbeat_interval_accepts_go_durations(raw: str, seconds: float) -> None:
    s = load_settings({}, {"HEARTBEAT_INTERVAL": raw, "STATUS_INTERVAL": "2m"}, hostname="h")
    assert s.heartbeat_interval == seconds


def test_a_flag_beats_the_environment() -> None:
    env = {"NODE_NAME": "from-env", "SERVER_URL": "http://env:8080", "AGENT_LISTEN_PORT": "9191"}
    s = load_settings({"node_name": "from-flag", "server": "http://flag:1/", "listen_port": None}, env, hostname="h")
    assert (s.node_name, s.server_url, s.listen_port) == ("from-flag", "http://flag:1", 9191)


def test_environment_values_are_read() -> None:
    env = {
        "DATA_DIR": "/data",
        "SYSTEM_RESERVED": "cpu=250m,memory=1Gi",
        "THROUGHPUT_BACKEND": "speedtest",
        "THROUGHPUT_STREAMS": "8",
        "THROUGHPUT_DURATION": "2s",
        "MAX_PEERS": "4",
        "TS_SOCKET": "/run/ts.sock",
    }
    s = load_settings({}, env, hostname="h")
    assert s.data_dir == Path("/data")
    assert s.reserved == Reservation(cpu_millis=250, memory_bytes=2**30, disk_bytes=2**30)
    assert (s.throughput_backend, s.throughput_streams, s.throughput_duration, s.max_peers, s.socket) == (
        "speedtest",
        8,
        2.0,
        4,
        "/run/ts.sock",
    )


@pytest.mark.parametrize(
    ("env", "flags", "message"),
    [
        ({"NODE_NAME": "Bad_Name"}, {}, "NODE_NAME: 'Bad_Name' is not a valid Node name"),
        ({}, {"node_name": "-x"}, "--node-name: '-x' is not a valid Node name"),
        ({"HEARTBEAT_INTERVAL": "soon"}, {}, "HEARTBEAT_INTERVAL: 'soon' is not a duration"),
        ({"HEARTBEAT_INTERVAL": "0s"}, {}, "HEARTBEAT_INTERVAL: '0s' must be a positive duration"),
        ({"AGENT_LISTEN_PORT": "70000"}, {}, "AGENT_LISTEN_PORT: 70000 is out of range"),
        ({"AGENT_LISTEN_PORT": "http"}, {}, "AGENT_LISTEN_PORT: 'http' is not a whole number"),
        ({"SERVER_URL": "cara-server:8080"}, {}, "SERVER_URL: 'cara-server:8080' must be an http:// or https:// URL"),
        ({"THROUGHPUT_BACKEND": "iperf"}, {}, "THROUGHPUT_BACKEND: 'iperf' is not one of server, speedtest, off"),
        ({"THROUGHPUT_DURATION": "30s"}, {}, "THROUGHPUT_DURATION: at most 10s"),
        ({"SYSTEM_RESERVED": "gpu=1"}, {}, "SYSTEM_RESERVED: 'gpu=1' is not cpu=Q"),
        ({"SYSTEM_RESERVED": "memory=lots"}, {}, "SYSTEM_RESERVED: memory: must be a quantity"),
        ({"HEARTBEAT_INTERVAL": "2m"}, {}, "STATUS_INTERVAL: must not be shorter than HEARTBEAT_INTERVAL"),
    ],
    ids=[
        "name-env",
        "name-flag",
        "duration-syntax",
        "duration-zero",
        "port-range",
        "port-text",
        "url-scheme",
        "backend",
        "duration-cap",
        "reserved-key",
        "reserved-quantity",
        "status-interval",
    ],
)
def test_bad_values_stop_with_one_line_naming_the_variable(
    env: dict[str, str], flags: dict[str, str | None], message: str
) -> None:
    with pytest.raises(SettingError) as caught:
        load_settings(flags, env, hostname="h")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_invalid_hostname_names_the_hostname_and_the_way_out() -> None:
    with pytest.raises(SettingError, match=r"the OS hostname 'my_box' \(set NODE_NAME\)"):
        load_settings({}, {}, hostname="my_box")


def test_reservation_keeps_defaults_for_missing_keys() -> None:
    assert parse_reservation("disk=10Gi") == Reservation(disk_bytes=10 * 2**30)
    assert parse_reservation("") == Reservation()


def test_the_environment_file_is_read_and_the_environment_overrides_it(tmp_path: Path) -> None:
    path = tmp_path / "agent.env"
    path.write_text('# edge settings\n\nNODE_NAME=edge7\nHEARTBEAT_INTERVAL="5s"\nMETRICS_CALLERS=tag:a, ops\n')
    s = load_settings({}, {"HEARTBEAT_INTERVAL": "8s"}, hostname="h", env_file=path)
    assert (s.node_name, s.heartbeat_interval, s.metrics_callers) == ("edge7", 8.0, ("tag:a", "ops"))
    assert load_settings({}, {}, hostname="h", env_file=path).heartbeat_interval == 5.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "NODE_NAME=e\nHEARTBEET=5s\n",
            "agent.env:2: HEARTBEET: unknown variable (known: AGENT_ADMINS, AGENT_LISTEN_ADDRESS,",
        ),
        ("just words\n", "agent.env:1: 'just words' is not VARIABLE=VALUE"),
        ("HEARTBEAT_INTERVAL=soon\n", "agent.env: HEARTBEAT_INTERVAL: 'soon' is not a duration"),
        ("NODE_NAME=Bad_Name\n", "agent.env: NODE_NAME: 'Bad_Name' is not a valid Node name"),
    ],
    ids=["unknown", "malformed", "bad-value", "bad-name"],
)
def test_a_bad_environment_file_names_the_file_the_line_or_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "agent.env"
    path.write_text(text)
    with pytest.raises(SettingError) as caught:
        load_settings({}, {}, hostname="h", env_file=path)
    assert str(caught.value).startswith(f"{tmp_path}/{message}")
    assert "\n" not in str(caught.value)


def test_check_config_exits_0_on_valid_settings_and_2_naming_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    monkeypatch.delenv("MAX_PEERS", raising=False)
    path = tmp_path / "agent.env"
    path.write_text("NODE_NAME=edge7\n")
    main(["--env-file", str(path), "--check-config"])
    assert capsys.readouterr().out == f"cara-agent: settings valid ({path}); node edge7\n"
    path.write_text("MAX_PEERS=lots\n")
    with pytest.raises(SystemExit) as exited:
        main(["--env-file", str(path), "--check-config"])
    assert exited.value.code == 2
    assert f"Error: {path}: MAX_PEERS: 'lots' is not a whole number" in capsys.readouterr().err


def test_every_setting_has_a_documented_row() -> None:
    table = TABLE.markdown(file_column=False)
    docs = (Path(__file__).resolve().parents[2] / "docs" / "agent.md").read_text()
    assert table in docs, "docs/agent.md's settings table differs from agent.settings.TABLE"


def test_project_settings_are_read() -> None:
    env = {
        "CONTAINER_RUNTIME_SOCKET": "/run/podman/podman.sock",
        "PROJECT_POLL_INTERVAL": "500ms",
        "INGRESS_PORT": "0",
        "AGENT_ADMINS": "ops, tag:cara-admin",
        "AGENT_VIEWERS": "dev",
    }
    s = load_settings({}, env, hostname="edge")
    assert (s.runtime_socket, s.project_poll_interval, s.ingress_port) == ("/run/podman/podman.sock", 0.5, 0)
    assert (s.agent_admins, s.agent_viewers) == (("ops", "tag:cara-admin"), ("dev",))
    assert load_settings({"runtime_socket": "off"}, {}, hostname="edge").runtime_socket == ""
    with pytest.raises(SettingError, match="PROJECT_POLL_INTERVAL"):
        load_settings({}, {"PROJECT_POLL_INTERVAL": "0s"}, hostname="edge")


def test_agent_admins_and_viewers_may_read_metrics_too() -> None:
    env = {"METRICS_CALLERS": "tag:scrape", "AGENT_ADMINS": "ops", "AGENT_VIEWERS": "dev, tag:view"}
    assert load_settings({}, env, hostname="edge").metrics_readers == ("tag:scrape", "ops", "dev", "tag:view")


@pytest.mark.parametrize(
    ("configured", "present", "want"),
    [
        (None, {"/var/run/docker.sock", "/run/podman/podman.sock"}, "/var/run/docker.sock"),
        (None, {"/run/podman/podman.sock"}, "/run/podman/podman.sock"),
        (None, set(), None),
        ("", {"/var/run/docker.sock"}, None),
        ("/x.sock", set(), "/x.sock"),
    ],
    ids=["docker-first", "podman", "none-found", "off", "configured"],
)
def test_find_runtime_socket(configured: str | None, present: set[str], want: str | None) -> None:
    assert find_runtime_socket(configured, present.__contains__) == want
