"""Bad input is rejected with `field: what is wrong` strings; good input of every shape is accepted."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.api import InvalidObject, Node, Project, ProjectStatusPatch, decode

SERVICE = {"name": "web", "image": "nginx"}


def errors_of(model: type[Any], doc: Any) -> list[str]:
    with pytest.raises(InvalidObject) as caught:
        decode(model, doc)
    return caught.value.errors


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"metadata": {"name": "n"}, "spec": {"unschedulable": "yes"}}, ["spec.unschedulable: must be a boolean"]),
        (
            {"metadata": {"name": "N_1"}},
            [
                "metadata.name: must be 1-253 characters of lower-case letters, digits, "
                "'-' and '.', starting and ending with a letter or digit"
            ],
        ),
        (
            {"metadata": {"name": "a" * 254}},
            [
                "metadata.name: must be 1-253 characters of lower-case letters, "
                "digits, '-' and '.', starting and ending with a letter or digit"
            ],
        ),
        ({"metadata": {}}, ["metadata.name: is required"]),
        ({}, ["metadata: is required"]),
        ({"kind": "Project", "metadata": {"name": "n"}}, ["kind: must be 'Node'"]),
        ({"apiVersion": "v2", "metadata": {"name": "n"}}, ["apiVersion: must be 'caravanserai/v1'"]),
        ({"metadata": {"name": 5}}, ["metadata.name: must be a string"]),
        ({"metadata": {"name": "n", "labels": {"a": 1}}}, ["metadata.labels.a: must be a string"]),
        (
            {"metadata": {"name": "n", "createdAt": "2026-01-01T00:00:00"}},
            ["metadata.createdAt: must be an RFC 3339 timestamp with a time zone (e.g. 2026-01-02T03:04:05Z)"],
        ),
        (
            {"metadata": {"name": "n", "createdAt": ""}},
            ["metadata.createdAt: must be an RFC 3339 timestamp (e.g. 2026-01-02T03:04:05Z)"],
        ),
        ({"metadata": {"name": "n"}, "spec": []}, ["spec: must be an object"]),
    ],
    ids=[
        "bool-as-string",
        "bad-name",
        "long-name",
        "no-name",
        "no-metadata",
        "wrong-kind",
        "wrong-api-version",
        "name-not-string",
        "label-not-string",
        "naive-time",
        "empty-time",
        "spec-not-object",
    ],
)
def test_node_errors_name_the_field(doc: dict[str, Any], expected: list[str]) -> None:
    assert errors_of(Node, doc) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, ["spec.services: is required"]),
        ({"services": []}, ["spec.services: must not be empty"]),
        ({"services": [{"name": "web"}]}, ["spec.services[0].image: is required"]),
        ({"services": [SERVICE, SERVICE]}, ["spec.services[1].name: duplicate service name 'web'"]),
        (
            {"services": [{**SERVICE, "volumeMounts": [{"name": "d", "mountPath": "/d"}]}]},
            ["spec.services[0].volumeMounts[0].name: 'd' is not declared in spec.volumes"],
        ),
        (
            {"services": [SERVICE], "volumes": [{"name": "d", "type": "Disk"}]},
            ['spec.volumes[0].type: Unsupported value: "Disk": supported values: "Ephemeral"'],
        ),
        (
            {"services": [SERVICE], "ingress": [{"name": "i", "target": {"service": "db", "port": 80}}]},
            ["spec.ingress[0].target.service: 'db' is not a service of this project"],
        ),
        (
            {"services": [SERVICE], "ingress": [{"name": "i", "target": {"service": "web", "port": 70000}}]},
            ["spec.ingress[0].target.port: input should be less than or equal to 65535"],
        ),
        (
            {"services": [SERVICE], "resources": {"cpu": "lots"}},
            ["spec.resources.cpu: must be a quantity such as '500m', '2', '512Mi' or '10Gi'"],
        ),
    ],
    ids=[
        "no-services",
        "empty-services",
        "no-image",
        "duplicate-service",
        "undeclared-volume",
        "bad-volume-type",
        "ingress-unknown-service",
        "port-range",
        "bad-quantity",
    ],
)
def test_project_errors_name_the_field(spec: dict[str, Any], expected: list[str]) -> None:
    assert errors_of(Project, {"metadata": {"name": "p"}, "spec": spec}) == expected


def test_several_errors_are_all_reported() -> None:
    errors = errors_of(Node, {"metadata": {"name": "X"}, "spec": {"unschedulable": 1, "hostname": 2}})
    assert len(errors) == 3


def test_unknown_fields_are_ignored() -> None:
    node = decode(Node, {"metadata": {"name": "n", "uid": "x"}, "spec": {"taints": []}, "extra": True})
    assert node.name == "n"


def test_body_that_is_not_an_object() -> None:
    assert errors_of(Node, [1, 2]) == ["body: must be a JSON object"]


def test_status_patch_requires_a_known_phase() -> None:
    assert errors_of(ProjectStatusPatch, {"phase": "Done"}) == [
        'phase: Unsupported value: "Done": supported values: "Pending", "Scheduled", "Running", "Failed", '
        '"Terminating", "Terminated"'
    ]
    assert decode(ProjectStatusPatch, {"phase": "Running", "reason": "Started"}).reason == "Started"
