"""Stateful fuzzing: random create → heartbeat → cordon → drain → uncordon → delete sequences against a model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from schemathesis.specs.openapi.schemas import OpenApiSchema

from controlplane.server.settings import Settings
from tests.conftest import FakeClock

from .conftest import EXAMPLES, FUZZ
from .test_openapi_fuzz import CHECKS

#: Sequences and steps: 250 x 40 = 10,000 steps, so each of the eight rules runs over 1,000 times.
SEQUENCES = 250
STEPS = 40

#: A small pool of names, so that sequences hit existing and missing nodes alike.
NAMES = st.sampled_from(["edge-1", "edge-2", "edge-3"])
#: Label values the write rules accept (empty, or alphanumeric at both ends); the schemathesis fuzzer sends the rest.
LABEL_VALUES = st.from_regex(r"|[abcz019]|[abcz019][abcz019-]{0,6}[abcz019]", fullmatch=True)
LABELS = st.dictionaries(st.sampled_from(["tier", "site", "zone"]), LABEL_VALUES, max_size=3)
GRACE = Settings().grace

#: Heartbeat bodies: an empty beat (lease only), full facts, and the agent's going-away beat.
BEATS = st.sampled_from(
    [
        None,
        {"capacity": {"cpu": "4000m", "memory": "7823Mi"}, "allocatable": {"cpu": "3500m", "memory": "7000Mi"}},
        {"network": {"ip": "100.64.0.5", "mode": "DERP", "latencyMs": 12.5}, "info": {"agentVersion": "0.1.0"}},
        {"state": "NotReady"},
    ]
)


@dataclass
class Expected:
    """Expected is what the model says one node looks like."""

    labels: dict[str, str]
    unschedulable: bool = False
    draining: bool = False
    # LastBeat: the fake clock at the last beat; None before any. Released: the last beat was a goodbye.
    last_beat: datetime | None = None
    released: bool = False

    def live(self, now: datetime) -> bool:
        return self.last_beat is not None and not self.released and now - self.last_beat <= GRACE


class NodeLifecycle(RuleBasedStateMachine):
    """NodeLifecycle drives the real app through schemathesis cases (every answer is checked against /openapi.json)
    and compares each Node with the model: status codes, cordon, drain and uncordon, lease freshness."""

    def __init__(self, schema: OpenApiSchema, clock: FakeClock) -> None:
        super().__init__()
        self.schema, self.clock = schema, clock
        self.nodes: dict[str, Expected] = {}

    def call(self, method: str, path: str, name: str | None = None, body: Any = None) -> Any:
        operation = self.schema[path][method]
        kwargs: dict[str, Any] = {"path_parameters": {"name": name}} if name is not None else {}
        if body is not None:
            kwargs["body"], kwargs["media_type"] = body, "application/json"
        return operation.Case(**kwargs).call_and_validate(checks=CHECKS)

    def expect(self, response: Any, name: str, found: int, missing: int = 404) -> bool:
        exists = name in self.nodes
        assert response.status_code == (found if exists else missing), response.text
        return exists

    @initialize()
    def start_clean(self) -> None:
        for node in self.call("GET", "/api/v1/nodes").json()["items"]:  # left by an earlier sequence
            self.call("DELETE", "/api/v1/nodes/{name}", node["metadata"]["name"])

    @rule(name=NAMES, labels=LABELS, unschedulable=st.booleans())
    def create(self, name: str, labels: dict[str, str], unschedulable: bool) -> None:
        body = {"metadata": {"name": name, "labels": labels}, "spec": {"unschedulable": unschedulable}}
        body["status"] = {"state": "Ready"}  # a client's status is dropped (design §4)
        response = self.call("POST", "/api/v1/nodes", body=body)
        if self.expect(response, name, found=409, missing=201):
            return
        assert response.json()["status"]["state"] == "NotReady"
        self.nodes[name] = Expected(labels=labels, unschedulable=unschedulable)

    @rule(name=NAMES, beat=BEATS)
    def heartbeat(self, name: str, beat: dict[str, Any] | None) -> None:
        response = self.call("POST", "/api/v1/nodes/{name}/heartbeat", name, body=beat)
        if self.expect(response, name, found=204):
            expected = self.nodes[name]
            expected.last_beat, expected.released = self.clock.now(), beat == {"state": "NotReady"}

    @rule(name=NAMES, labels=LABELS)
    def cordon(self, name: str, labels: dict[str, str]) -> None:
        body = {"metadata": {"name": name, "labels": labels}, "spec": {"unschedulable": True}}
        if self.expect(self.call("PUT", "/api/v1/nodes/{name}", name, body=body), name, found=200):
            self.nodes[name].labels, self.nodes[name].unschedulable = labels, True

    @rule(name=NAMES)
    def drain(self, name: str) -> None:
        if self.expect(self.call("POST", "/api/v1/nodes/{name}/drain", name), name, found=200):
            self.nodes[name].unschedulable = self.nodes[name].draining = True

    @rule(name=NAMES)
    def uncordon(self, name: str) -> None:
        response = self.call("POST", "/api/v1/nodes/{name}/uncordon", name)
        if self.expect(response, name, found=200):
            expected = self.nodes[name]
            if expected.draining:  # a drain ends in Ready only for a node whose lease is still fresh
                wanted = "Ready" if expected.live(self.clock.now()) else "NotReady"
                assert response.json()["status"]["state"] == wanted
            expected.unschedulable = expected.draining = False

    @rule(name=NAMES)
    def delete(self, name: str) -> None:
        if self.expect(self.call("DELETE", "/api/v1/nodes/{name}", name), name, found=204):
            del self.nodes[name]

    @rule(seconds=st.sampled_from([1, 15, 41]))
    def time_passes(self, seconds: int) -> None:
        self.clock.step(seconds)

    @rule(name=NAMES)
    def get(self, name: str) -> None:
        response = self.call("GET", "/api/v1/nodes/{name}", name)
        if not self.expect(response, name, found=200):
            return
        node, expected = response.json(), self.nodes[name]
        assert node["spec"]["unschedulable"] is expected.unschedulable
        assert (node["status"]["state"] == "Draining") is expected.draining
        assert (node["metadata"].get("labels") or {}) == expected.labels
        if expected.last_beat is not None:
            assert node["status"]["lastHeartbeat"] == expected.last_beat.isoformat().replace("+00:00", "Z")

    @invariant()
    def list_matches_model(self) -> None:
        items = self.call("GET", "/api/v1/nodes").json()["items"]
        assert sorted(item["metadata"]["name"] for item in items) == sorted(self.nodes)


@pytest.mark.slow
def test_node_lifecycle_sequences(fuzz_schema: OpenApiSchema, fuzz_clock: FakeClock) -> None:
    assert SEQUENCES * STEPS >= 8 * EXAMPLES
    run_state_machine_as_test(
        # hypothesis calls this factory for each sequence; its stub asks for the class, whose __init__ takes none
        lambda: NodeLifecycle(fuzz_schema, fuzz_clock),  # type: ignore[arg-type]
        settings=settings(FUZZ, max_examples=SEQUENCES, stateful_step_count=STEPS),
    )
