"""Reading and writing a lab's state.json, and who is using the lab."""

from __future__ import annotations

import os
from pathlib import Path

from . import system as sy
from .plan import LabError, Plan, State, make_plan


def load_state(plan: Plan) -> State | None:
    """Return the recorded state of the lab, or None when it is not up."""
    try:
        return State.from_json(Path(plan.state_file).read_text())
    except FileNotFoundError:
        return None


def save_state(plan: Plan, state: State) -> None:
    """Write the state atomically, so a reader never sees half a file."""
    tmp = f"{plan.state_file}.tmp"
    Path(tmp).write_text(state.to_json())
    os.replace(tmp, plan.state_file)


def users(plan: Plan) -> list[int]:
    """Return the live PIDs that registered themselves as using this lab (see `Lab` in tests/lab/conftest.py)."""
    d = Path(plan.dir) / "users"
    return sorted(int(p.name) for p in d.glob("*") if p.name.isdigit() and sy.alive(int(p.name))) if d.is_dir() else []


def plan_of_running(name: str) -> Plan:
    """Return the plan of the running lab `name` (its edge count comes from the state file)."""
    probe = make_plan(name, 0)
    state = load_state(probe)
    if state is None:
        raise LabError(f"lab '{name}' is not up; start it with `headscale-dev/lab up`")
    return make_plan(name, state.edges)
