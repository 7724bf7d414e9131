"""How a Project's runtime objects are named and labelled (the Go agent's rules, so a mixed fleet agrees)."""

from __future__ import annotations

from typing import Final

#: Labels on every container (and on our networks and volumes) of a Project.
PROJECT_LABEL: Final = "cara.project"
SERVICE_LABEL: Final = "cara.service"


def network_name(project: str) -> str:
    """network_name is the Project's bridge network: `cara-<project>`."""
    return f"cara-{project}"


def volume_name(project: str, volume: str) -> str:
    """volume_name is a Project volume's named volume: `cara-<project>-<volume>`."""
    return f"cara-{project}-{volume}"


def container_name(project: str, service: str) -> str:
    """container_name is a service's container: `<project>-<service>`."""
    return f"{project}-{service}"


def project_labels(project: str) -> dict[str, str]:
    """project_labels selects everything of a Project."""
    return {PROJECT_LABEL: project}


def service_labels(project: str, service: str) -> dict[str, str]:
    """service_labels are a container's labels."""
    return {PROJECT_LABEL: project, SERVICE_LABEL: service}
