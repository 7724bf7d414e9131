"""NotReady detection benchmark: how long after its last heartbeat a silent node is reported NotReady."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import httpx

#: Short timings so that 20 samples take seconds, not minutes; the figure that matters is the overshoot
#: beyond the grace (target: at most one lifecycle pass period, 1 s).
HEARTBEAT_S = 1.0
GRACE_S = 3.0
SERVER_ARGS = ("--heartbeat-interval", f"{HEARTBEAT_S:g}s", "--grace", f"{GRACE_S:g}s")
PROBES = 20
BEAT_EVERY_S = 0.5
POLL_S = 0.05
#: Silences start spread over this many seconds, so samples fall at every phase of the 1 s pass period.
SPREAD_S = 2.0


@dataclass(frozen=True)
class Detection:
    """Detection is the NotReady latency of each probe node, measured from its last acknowledged beat."""

    latencies: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)

    @property
    def max(self) -> float:
        return max(self.latencies)


async def _measure(url: str) -> Detection:
    names = [f"probe-{i}" for i in range(PROBES)]
    last_beat: dict[str, float] = {}
    detected: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        for name in names:
            answer = await client.post("/api/v1/nodes", json={"metadata": {"name": name}})
            if answer.status_code not in (201, 409):
                raise RuntimeError(f"registering {name}: {answer.status_code} {answer.text}")

        async def beat_all(names_to_beat: list[str]) -> None:
            for name in names_to_beat:
                answer = await client.post(f"/api/v1/nodes/{name}/heartbeat")
                if answer.status_code != 204:
                    raise RuntimeError(f"heartbeat {name}: {answer.status_code}")
                last_beat[name] = time.time()

        async def states() -> dict[str, str]:
            items = (await client.get("/api/v1/nodes")).json()["items"]
            return {item["metadata"]["name"]: item["status"].get("state", "") for item in items}

        deadline = time.monotonic() + 30
        while True:  # every probe Ready first
            await beat_all(names)
            if all(states_ == "Ready" for name, states_ in (await states()).items() if name in names):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("probe nodes did not turn Ready within 30 s")
            await asyncio.sleep(BEAT_EVERY_S)

        start = time.time()
        silence_at = {name: start + SPREAD_S * i / PROBES for i, name in enumerate(names)}

        async def keep_beating() -> None:
            while True:
                live = [name for name in names if time.time() < silence_at[name]]
                if not live:
                    return
                await beat_all(live)
                await asyncio.sleep(min(BEAT_EVERY_S, max(0.0, min(silence_at[n] for n in live) - time.time())))

        async def watch() -> None:
            deadline = time.monotonic() + SPREAD_S + GRACE_S + 15
            while len(detected) < len(names) and time.monotonic() < deadline:
                now = time.time()
                for name, state in (await states()).items():
                    if name in silence_at and now >= silence_at[name] and state == "NotReady":
                        detected.setdefault(name, now)
                await asyncio.sleep(POLL_S)

        await asyncio.gather(keep_beating(), watch())
    missing = [name for name in names if name not in detected]
    if missing:
        raise RuntimeError(f"never reported NotReady: {missing}")
    return Detection([detected[name] - last_beat[name] for name in names])


def measure(url: str) -> Detection:
    """measure silences PROBES beating nodes at staggered times and returns each one's detection latency."""
    return asyncio.run(_measure(url))
