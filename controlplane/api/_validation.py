"""The write rules of caravanserai/v1, as Kubernetes states them: names, labels, images, quantities, IPs, ports.

The models decide the shape of a document (and read anything stored under older, looser rules); the rules here
are what a document must also meet to be written. They read the wire dict, so one pass reports every error of a
document at once, each as `path: Invalid value: "<value>": <what is allowed>`.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, TypeVar

from pydantic import BaseModel

from controlplane.naming import (
    label_problem,
    label_value_problem,
    qualified_name_problem,
    subdomain_problem,
)

from ._errors import InvalidObject, decode, shown
from ._quantity import parse_quantity, parse_throughput

_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
#: An OCI image reference: [registry[:port]/]path[:tag][@digest] (the distribution project's grammar).
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    r"(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?"
    rf"{_PATH_PART}(?:/{_PATH_PART})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
#: The total size of an object's annotations, keys and values (Kubernetes' TotalAnnotationSizeLimitB).
ANNOTATIONS_MAX_BYTES: Final = 256 * 1024

IMAGE_RULE: Final = "must be an image reference such as 'nginx', 'nginx:1.27' or 'registry.example:5000/team/app:v2'"
QUANTITY_RULE: Final = "must be a quantity such as '500m', '2', '512Mi' or '10Gi'"
PORT_MAX: Final = 65535
PORT_RULE: Final = "must be between 1 and 65535, inclusive"
IP_RULE: Final = "must be a valid IP address (e.g. '100.64.0.5')"


def invalid(path: str, value: Any, rule: str) -> str:
    """invalid is Kubernetes' `path: Invalid value: "value": rule`."""
    return f"{path}: Invalid value: {shown(value)}: {rule}"


def unsupported(path: str, value: Any, allowed: list[str]) -> str:
    """unsupported is Kubernetes' `path: Unsupported value: "value": supported values: "a", "b"`."""
    return f"{path}: Unsupported value: {shown(value)}: supported values: {', '.join(json.dumps(a) for a in allowed)}"


# --- single rules: each returns what is wrong with value, or None -------------------------------------------------


def image_problem(value: str) -> str | None:
    """image_problem checks an OCI image reference."""
    return None if len(value) <= 512 and _IMAGE.fullmatch(value) else IMAGE_RULE


#: Distinct values whose verdict the checks below remember: an agent reports the same addresses and quantities
#: in every full beat, and parsing them again was a tenth of the beat's CPU.
_REMEMBERED: Final = 4096


@functools.lru_cache(maxsize=_REMEMBERED)
def quantity_problem(value: str) -> str | None:
    """quantity_problem checks a non-negative Kubernetes quantity."""
    negative = value.strip().startswith("-")
    try:
        parse_quantity(value.strip().removeprefix("-"))
    except ValueError:
        return QUANTITY_RULE
    return "must be greater than or equal to 0" if negative else None


@functools.lru_cache(maxsize=_REMEMBERED)
def ip_problem(value: str) -> str | None:
    """ip_problem checks an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return IP_RULE
    return None


# --- walking a wire document ---------------------------------------------------------------------------------------


def _is_mapping(doc: Any) -> bool:
    # JSON and YAML decode to dicts: the exact type check first, the ABC's (slow) only for other mappings.
    return type(doc) is dict or isinstance(doc, Mapping)


def _at(doc: Any, *keys: str) -> Any:
    for key in keys:
        if not _is_mapping(doc):
            return None
        doc = doc.get(key)
    return doc


def _items(doc: Any, *keys: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    value = _at(doc, *keys)
    if isinstance(value, list):
        for index, item in enumerate(value):
            if _is_mapping(item):
                yield index, item


def _string(errors: list[str], path: str, value: Any, problem: Callable[[str], str | None]) -> None:
    if isinstance(value, str):
        found = problem(value)
        if found is not None:
            errors.append(invalid(path, value, found))


def metadata_errors(doc: Any) -> list[str]:
    """metadata_errors checks metadata.name, labels and annotations of a wire object."""
    errors: list[str] = []
    _string(errors, "metadata.name", _at(doc, "metadata", "name"), subdomain_problem)
    labels = _at(doc, "metadata", "labels")
    if isinstance(labels, Mapping):
        for key, value in labels.items():
            _string(errors, "metadata.labels", key, qualified_name_problem)
            _string(errors, f"metadata.labels[{key}]", value, label_value_problem)
    annotations = _at(doc, "metadata", "annotations")
    if isinstance(annotations, Mapping):
        size = 0
        for key, value in annotations.items():
            _string(errors, "metadata.annotations", key, qualified_name_problem)
            size += len(str(key).encode()) + len(str(value).encode())
        if size > ANNOTATIONS_MAX_BYTES:
            errors.append(f"metadata.annotations: Too long: must have at most {ANNOTATIONS_MAX_BYTES} bytes")
    return errors


#: qualified_name_problem with its verdicts remembered: a resource list's keys are the same few in every full beat.
_resource_name_problem: Final = functools.lru_cache(maxsize=_REMEMBERED)(qualified_name_problem)


def _resource_list_errors(errors: list[str], path: str, resources: Any) -> None:
    if _is_mapping(resources):
        for key, value in resources.items():
            _string(errors, path, key, _resource_name_problem)
            if isinstance(value, str) and quantity_problem(value) is not None:
                _string(errors, f"{path}.{key}", value, quantity_problem)


def status_fact_errors(doc: Any, prefix: str = "") -> list[str]:
    """status_fact_errors checks what an agent reports: addresses, quantities and rates. It runs on every full
    beat, so a path is spelled out only for a value found wrong."""
    errors: list[str] = []
    network = _at(doc, "network")
    if _is_mapping(network):
        _string(errors, f"{prefix}network.ip", network.get("ip"), ip_problem)
        throughput = network.get("throughput")
        if throughput is not None:
            for direction in ("download", "upload"):
                _string(errors, f"{prefix}network.throughput.{direction}", _at(throughput, direction), _rate)
        for index, peer in _items(network, "peers"):
            ip = peer.get("ip")
            if isinstance(ip, str) and ip_problem(ip) is not None:
                _string(errors, f"{prefix}network.peers[{index}].ip", ip, ip_problem)
    for field in ("capacity", "allocatable", "available"):
        resources = _at(doc, field)
        if resources is not None:
            _resource_list_errors(errors, f"{prefix}{field}", resources)
    return errors


def _rate(value: str) -> str | None:
    if not value:
        return None
    try:
        parse_throughput(value)
    except ValueError as exc:
        return str(exc)
    return None


def node_errors(doc: Any) -> list[str]:
    """node_errors checks the parts of a Node a client writes (status is the control plane's, dropped on write)."""
    return metadata_errors(doc)


def project_errors(doc: Any) -> list[str]:
    """project_errors checks a Project's metadata and spec: names, images, mounts, references and requests."""
    errors = metadata_errors(doc)
    spec = _at(doc, "spec")
    services = list(_items(spec, "services"))
    seen: set[str] = set()
    for index, service in services:
        path = f"spec.services[{index}]"
        name = service.get("name")
        _string(errors, f"{path}.name", name, label_problem)
        if isinstance(name, str):
            if name in seen:
                errors.append(f"{path}.name: Duplicate value: {shown(name)}")
            seen.add(name)
        _string(errors, f"{path}.image", service.get("image"), image_problem)
        for e_index, env in _items(service, "env"):
            _string(errors, f"{path}.env[{e_index}].name", env.get("name"), _env_name)
        for m_index, mount in _items(service, "volumeMounts"):
            _string(errors, f"{path}.volumeMounts[{m_index}].mountPath", mount.get("mountPath"), _mount_path)
    volumes = set()
    for index, volume in _items(spec, "volumes"):
        _string(errors, f"spec.volumes[{index}].name", volume.get("name"), label_problem)
        volumes.add(volume.get("name"))
    for index, service in services:
        for m_index, mount in _items(service, "volumeMounts"):
            if isinstance(mount.get("name"), str) and mount["name"] not in volumes:
                errors.append(
                    f"spec.services[{index}].volumeMounts[{m_index}].name: Not found: {shown(mount['name'])}: "
                    "must be declared in spec.volumes"
                )
    for index, ingress in _items(spec, "ingress"):
        path = f"spec.ingress[{index}]"
        _string(errors, f"{path}.name", ingress.get("name"), label_problem)
        _string(errors, f"{path}.host", ingress.get("host") or None, subdomain_problem)
        port = _at(ingress, "target", "port")
        if isinstance(port, int) and not isinstance(port, bool) and not 1 <= port <= PORT_MAX:
            errors.append(invalid(f"{path}.target.port", port, PORT_RULE))
        target = _at(ingress, "target", "service")
        if isinstance(target, str) and target not in seen:
            errors.append(f"{path}.target.service: Not found: {shown(target)}: must be a service of this project")
    for field in ("cpu", "memory"):
        _string(errors, f"spec.resources.{field}", _at(spec, "resources", field), quantity_problem)
    return errors


def _env_name(value: str) -> str | None:
    if _ENV_NAME.fullmatch(value):
        return None
    return (
        "a valid environment variable name must consist of alphabetic characters, digits, '_', '-' or '.', and "
        "must not start with a digit"
    )


def _mount_path(value: str) -> str | None:
    return None if value.startswith("/") else "must be an absolute path (e.g. '/data')"


def heartbeat_errors(doc: Any) -> list[str]:
    """heartbeat_errors checks the facts of a heartbeat body."""
    return status_fact_errors(doc)


M = TypeVar("M", bound=BaseModel)

#: The write rules of each model that has them (the model's name → rules over its wire dict).
RULES: Final[dict[str, Callable[[Any], list[str]]]] = {
    "Node": node_errors,
    "Project": project_errors,
    "Heartbeat": heartbeat_errors,
}


def _path_of(error: str) -> str:
    return error.split(": ", 1)[0]


def decode_valid(model: type[M], data: Any, *, prefix: str = "") -> M:
    """decode_valid decodes data as model and applies the write rules; raises InvalidObject listing every error.

    A path both the model and a rule object to is reported once, as the rule words it (with the value).
    """
    rules = RULES.get(model.__name__)
    found = [f"{prefix}.{e}" if prefix else e for e in rules(data)] if rules and isinstance(data, dict) else []
    try:
        obj = decode(model, data, prefix=prefix)
    except InvalidObject as exc:
        covered = {_path_of(error) for error in found}
        raise InvalidObject([*found, *(e for e in exc.errors if _path_of(e) not in covered)]) from None
    if found:
        raise InvalidObject(found)
    return obj
