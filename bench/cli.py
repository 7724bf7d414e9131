"""`caractrl get nodes` wall time: the real CLI process against a server holding 1,000 Nodes."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CARACTRL = str(Path(sys.executable).with_name("caractrl"))


def time_get_nodes(url: str, *, runs: int, cpu: int | None = 1) -> list[float]:
    """time_get_nodes runs `caractrl --server URL get nodes` runs times (after one untimed warm-up run that
    fills the OS page cache) and returns each wall time in seconds."""
    command = [CARACTRL, "--server", url, "get", "nodes"]
    if cpu is not None and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", str(cpu), *command]
    env = {key: value for key, value in os.environ.items() if key != "CARA_SERVER"}
    times: list[float] = []
    for run in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"caractrl failed: {done.stderr.decode()[-500:]}")
        if run:
            times.append(elapsed)
    lines = done.stdout.decode().count("\n")
    if lines < 1000:
        raise RuntimeError(f"caractrl printed {lines} lines, expected a header and 1,000 nodes")
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)
