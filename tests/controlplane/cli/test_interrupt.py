"""Ctrl-C ends a caractrl command (context.run), even one whose action swallows the first cancellation, as a library
can (agronholm/anyio#1214): the command is cancelled again until it ends, and KeyboardInterrupt leaves `run`."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from controlplane.cli.context import CANCEL_AGAIN_S, Env, run
from controlplane.client import Client


def test_ctrl_c_ends_an_action_that_swallows_a_cancellation() -> None:
    swallowed: list[float] = []

    async def action(client: Client) -> None:
        asyncio.get_running_loop().call_later(0.1, os.kill, os.getpid(), signal.SIGINT)
        until = time.monotonic() + 10 * CANCEL_AGAIN_S
        while time.monotonic() < until:
            try:
                await asyncio.sleep(until - time.monotonic())
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed.append(time.monotonic())  # accepted, not propagated

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run(Env(environ={}, server="http://127.0.0.1:9"), action)
    assert len(swallowed) == 1
    assert time.monotonic() - swallowed[0] < 4 * CANCEL_AGAIN_S
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the process's own handler is back
    assert time.monotonic() - started < 10 * CANCEL_AGAIN_S


def test_an_action_that_ends_on_its_own_is_not_interrupted() -> None:
    async def action(client: Client) -> str:
        return "done"

    assert run(Env(environ={}, server="http://127.0.0.1:9"), action) == "done"
