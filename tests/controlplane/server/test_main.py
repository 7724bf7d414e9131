"""`cara-server` refuses what it must refuse, with a message naming the flag, before binding anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from controlplane.server.main import main


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--dev", "--listen", "0.0.0.0:8080"], 2, "--dev binds loopback only"),
        (["--dev", "--listen", "localhost"], 2, "is not HOST:PORT"),
        (["--dev", "--socket", "/x"], 2, "--dev takes one loopback --listen and no --socket or --config"),
        (["--grace", "5s"], 2, "--grace: 5s must be longer than the heartbeat interval (10s)"),
        (["--grace", "soon"], 2, "'soon' is not a duration"),
        (["--socket", "/nonexistent/ts.sock"], 1, "cannot reach tailscaled at /nonexistent/ts.sock"),
    ],
    ids=["dev-non-loopback", "dev-bad-listen", "dev-socket", "grace-short", "grace-bad", "no-tailscaled"],
)
def test_refusals(args: list[str], code: int, message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(tmp_path)])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert not (tmp_path / "cara.db").exists() or code == 1
