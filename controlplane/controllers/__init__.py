"""Node lifecycle, conditions, draining, scheduler and rescheduler, run together by `run_controllers`."""

from .config import ControllerConfig
from .manager import run_controllers

__all__ = ["ControllerConfig", "run_controllers"]
