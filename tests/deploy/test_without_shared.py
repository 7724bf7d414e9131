"""A clone without the workspace's ../shared: scripts/test sets CARA_WITHOUT_SHARED_CONTRACT=1 and the 4 tests that
read ../shared/contract are deselected (not skipped); without the variable (CI, where ../shared exists) they run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_TESTS = "tests/controlplane/api/test_contract.py"


def _collect(env: dict[str, str]) -> str:
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", CONTRACT_TESTS]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow  # seconds of waiting: out of the --fast profile, still in CI
def test_the_contract_tests_are_deselected_when_scripts_test_says_so() -> None:
    # Without the variable they run in this very session (CI has ../shared): no need to collect them again here.
    without = _collect({**os.environ, "CARA_WITHOUT_SHARED_CONTRACT": "1"})
    assert "test_full_node_matches_the_go_schema" not in without
    assert "4 deselected" in without and "test_round_trip_is_lossless" in without


def test_scripts_test_says_in_one_line_what_it_leaves_out() -> None:
    script = (ROOT / "scripts" / "test").read_text()
    assert "if [ ! -d ../shared/contract ]; then" in script
    assert "export CARA_WITHOUT_SHARED_CONTRACT=1" in script
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("./scripts/test")
