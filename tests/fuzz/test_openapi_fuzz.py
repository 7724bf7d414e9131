"""Stateless fuzzing: schemathesis generates 1,000 cases per operation of /openapi.json and checks every answer."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.schemas import OpenApiSchema

from .conftest import EXAMPLES, FUZZ

#: Every fuzzed operation, by schemathesis label. Spelled out so a report names the operation; the first test keeps
#: the list equal to what /openapi.json publishes (the throughput streams are time-boxed, so they are left out).
OPERATIONS = [
    "GET /api/healthz",
    "GET /api/version",
    "GET /metrics",
    "GET /api/v1/nodes",
    "POST /api/v1/nodes",
    "GET /api/v1/nodes/{name}",
    "PUT /api/v1/nodes/{name}",
    "DELETE /api/v1/nodes/{name}",
    "POST /api/v1/nodes/{name}/heartbeat",
    "POST /api/v1/nodes/{name}/cordon",
    "POST /api/v1/nodes/{name}/drain",
    "POST /api/v1/nodes/{name}/release",
    "POST /api/v1/nodes/{name}/uncordon",
    "GET /api/v1/nodes/{name}/history",
    "GET /api/v1/nodes/{name}/peers",
    "GET /api/v1/nodes/{name}/availability",
    "GET /api/v1/events",
    "GET /api/v1/projects",
    "POST /api/v1/projects",
    "GET /api/v1/projects/{name}",
    "PUT /api/v1/projects/{name}",
    "DELETE /api/v1/projects/{name}",
    "PATCH /api/v1/projects/{name}/status",
]

#: The operations that take no input at all (no parameters, no body).
WITHOUT_INPUT = {"GET /api/healthz", "GET /api/version", "GET /metrics"}

#: The operations that read a JSON body.
WITH_BODY = [
    "POST /api/v1/nodes",
    "PUT /api/v1/nodes/{name}",
    "POST /api/v1/nodes/{name}/heartbeat",
    "POST /api/v1/projects",
    "PUT /api/v1/projects/{name}",
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
    results = list(fuzz_schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), "every operation of /openapi.json loads"
    published = sorted(result.ok().label for result in results if isinstance(result, Ok))
    assert published == sorted(OPERATIONS)


def test_the_schema_documents_bodies_and_problems(fuzz_app: FastAPI) -> None:
    """Found while wiring the fuzzer: /openapi.json described no request body (routes read them by hand), documented
    FastAPI's 422 (the server answers 400) and no problem document at all."""
    document = fuzz_app.openapi()
    operations = {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    for label, operation in operations.items():
        assert "422" not in operation["responses"], label
        problem = operation["responses"]["500"]["content"]["application/problem+json"]["schema"]
        assert problem == {"$ref": "#/components/schemas/Problem"}, label
    for label in WITH_BODY:
        body = operations[label]["requestBody"]["content"]["application/json"]["schema"]
        assert "properties" in body and body.get("additionalProperties", True) is not False, label  # §3.2: extras ok
    name = operations["POST /api/v1/nodes"]["requestBody"]["content"]["application/json"]["schema"]
    assert name["properties"]["metadata"]["properties"]["name"]["pattern"].startswith("^[a-z0-9]")
    assert operations["POST /api/v1/nodes/{name}/heartbeat"]["requestBody"]["required"] is False


@pytest.mark.slow
@pytest.mark.parametrize("label", OPERATIONS)
def test_operation(fuzz_schema: OpenApiSchema, label: str) -> None:
    """Schema-valid (positive) and schema-violating (negative) requests alike get a documented, non-5xx answer."""
    operation = fuzz_schema.find_operation_by_label(label)
    assert operation is not None
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    calls = Counter[str]()

    @FUZZ
    @given(case=cases)
    def fuzz(case: Case[Any]) -> None:
        calls[case.method] += 1
        case.call_and_validate(checks=CHECKS)

    fuzz()
    # Hypothesis stops early only when it has tried every input there is: the two operations that take none.
    assert calls.total() >= (1 if label in WITHOUT_INPUT else EXAMPLES)
