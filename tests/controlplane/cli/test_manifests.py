"""Tests of manifest loading for apply: document splitting, unknown-field warnings and status stripping."""

from __future__ import annotations

import pytest
import yaml

from controlplane.api import Node, Project
from controlplane.cli.manifests import ManifestError, load_manifests, unknown_fields

PROJECT = """\
kind: Project
metadata: {name: web, labelz: {a: b}}
spec:
  services:
    - name: web
      image: nginx
      ports: [80]
      env: [{name: A, value: "1", secret: true}]
  resources: {cpu: 500m, gpu: "1"}
status: {phase: Running, nodeRef: edge-1}
"""


def test_unknown_fields_are_found_at_every_depth() -> None:
    data = yaml.safe_load(PROJECT)
    assert unknown_fields(Project, data) == [
        "metadata.labelz",
        "spec.services[0].ports",
        "spec.services[0].env[0].secret",
        "spec.resources.gpu",
    ]


def test_snake_case_names_and_free_form_maps_are_not_unknown() -> None:
    data = {
        "kind": "Node",
        "api_version": "caravanserai/v1",
        "metadata": {"name": "a", "labels": {"any": "x"}},
        "status": {"capacity": {"gpu": "1"}},
    }
    assert unknown_fields(Node, data) == []


def test_a_manifest_says_what_it_ignores_and_carries_no_status() -> None:
    [manifest] = load_manifests(PROJECT, "p.yaml")
    assert manifest.ref == "project/web"
    assert manifest.warnings == [
        "p.yaml: document 1: unknown field metadata.labelz is ignored",
        "p.yaml: document 1: unknown field spec.services[0].ports is ignored",
        "p.yaml: document 1: unknown field spec.services[0].env[0].secret is ignored",
        "p.yaml: document 1: unknown field spec.resources.gpu is ignored",
        "p.yaml: document 1: status is ignored: the control plane owns it",
    ]
    assert manifest.obj.to_wire()["status"] == {"phase": "Pending"}


def test_yaml_booleans_and_quoted_strings() -> None:
    [cordoned] = load_manifests("kind: Node\nmetadata: {name: a}\nspec: {unschedulable: yes}\n", "n.yaml")
    assert isinstance(cordoned.obj, Node) and cordoned.obj.spec.unschedulable is True
    with pytest.raises(ManifestError) as info:
        load_manifests('kind: Node\nmetadata: {name: a}\nspec: {unschedulable: "yes"}\n', "n.yaml")
    assert info.value.lines == ["n.yaml: document 1: spec.unschedulable: must be a boolean"]


def test_labels_must_be_strings() -> None:
    with pytest.raises(ManifestError) as info:
        load_manifests("kind: Node\nmetadata: {name: a, labels: {version: 1.0}}\n", "n.yaml")
    assert info.value.lines == ["n.yaml: document 1: metadata.labels.version: must be a string"]


def test_document_numbers_count_empty_documents() -> None:
    text = "---\n---\nkind: Node\nmetadata: {name: a}\n---\nkind: Node\nmetadata: {name: b}\n"
    assert [m.where for m in load_manifests(text, "f")] == ["f: document 2", "f: document 3"]
