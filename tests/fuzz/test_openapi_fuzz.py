"""Stateless fuzzing: schemathesis generates 1,000 cases per operation of /openapi.json and checks every answer."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.specs.openapi.schemas import OpenApiSchema

from .conftest import FUZZ

#: Every fuzzed operation, by schemathesis label. Spelled out so a report names the operation; the first test keeps
#: the list equal to what /openapi.json publishes (the throughput streams are time-boxed, so they are left out).
OPERATIONS = [
    "GET /api/healthz",
    "GET /metrics",
    "GET /api/v1/nodes",
    "POST /api/v1/nodes",
    "GET /api/v1/nodes/{name}",
    "PUT /api/v1/nodes/{name}",
    "DELETE /api/v1/nodes/{name}",
    "POST /api/v1/nodes/{name}/heartbeat",
    "POST /api/v1/nodes/{name}/drain",
    "POST /api/v1/nodes/{name}/release",
    "POST /api/v1/nodes/{name}/uncordon",
    "GET /api/v1/nodes/{name}/history",
    "GET /api/v1/projects",
    "POST /api/v1/projects",
    "GET /api/v1/projects/{name}",
    "PUT /api/v1/projects/{name}",
    "DELETE /api/v1/projects/{name}",
    "PATCH /api/v1/projects/{name}/status",
]

#: No 5xx, and every status, content type and body is one the published schema declares for the operation.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


def test_every_published_operation_is_fuzzed(fuzz_schema: OpenApiSchema) -> None:
    published = sorted(result.ok().label for result in fuzz_schema.get_all_operations())
    assert published == sorted(OPERATIONS)


@pytest.mark.slow
@pytest.mark.parametrize("label", OPERATIONS)
def test_operation(fuzz_schema: OpenApiSchema, label: str) -> None:
    """Schema-valid (positive) and schema-violating (negative) requests alike get a documented, non-5xx answer."""
    operation = fuzz_schema.find_operation_by_label(label)
    assert operation is not None
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @FUZZ
    @given(case=cases)
    def fuzz(case: Case) -> None:
        case.call_and_validate(checks=CHECKS)

    fuzz()
