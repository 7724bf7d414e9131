"""Regressions of hostile JSON the fuzzing work found: each once answered 500 or was silently misread."""

from __future__ import annotations

import httpx
import pytest

from controlplane.api import InvalidObject, NodeNetworkStatus, decode

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        # A 5,000-digit integer made json.loads raise a plain ValueError (Python's int-size guard): a 500.
        (b'{"metadata": {"name": "a"}, "x": ' + b"1" * 5000 + b"}", "body: invalid JSON: integer 111111111111..."),
        # NaN and Infinity are not JSON; json.loads took them, and an ignored field hid them.
        (b'{"metadata": {"name": "a"}, "x": NaN}', "body: invalid JSON: NaN is not a JSON number"),
        (b'{"metadata": {"name": "a"}, "x": -Infinity}', "body: invalid JSON: -Infinity is not a JSON number"),
        # A repeated key: the last value silently won, so a different object than the text shows was stored.
        (b'{"metadata": {"name": "a", "name": "b"}}', 'body: invalid JSON: duplicate key "name" in an object'),
    ],
    ids=["huge-integer", "nan", "infinity", "duplicate-key"],
)
async def test_json_that_only_python_accepts_is_a_400(api: httpx.AsyncClient, content: bytes, error: str) -> None:
    answer = await api.post("/api/v1/nodes", content=content)
    assert answer.status_code == 400 and answer.headers["content-type"] == PROBLEM
    [message] = answer.json()["errors"]
    assert message.startswith(error)
    assert (await api.get("/api/v1/nodes")).json()["items"] == []


async def test_an_overflowing_latency_cannot_poison_the_node(api: httpx.AsyncClient) -> None:
    """1e999 is valid JSON that reads as infinity: stored, it made every later GET of the node a 500."""
    assert (await api.post("/api/v1/nodes", json={"metadata": {"name": "edge1"}})).status_code == 201
    beat = await api.post("/api/v1/nodes/edge1/heartbeat", content=b'{"network": {"latencyMs": 1e999}}')
    assert beat.status_code == 400
    assert beat.json()["errors"] == ["body: invalid JSON: number 1e999 is out of range"]
    answer = await api.get("/api/v1/nodes/edge1")
    assert answer.status_code == 200 and "latencyMs" not in answer.text


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_latency_must_be_finite_in_the_model_too(value: float) -> None:
    """Built in Python (an agent's own computation), an infinite latency is refused before it reaches the wire."""
    with pytest.raises(InvalidObject) as caught:
        decode(NodeNetworkStatus, {"latencyMs": value})
    assert caught.value.errors == ["latencyMs: input should be a finite number"]
