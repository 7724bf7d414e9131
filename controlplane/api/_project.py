"""The Project kind: services a user wants run on one Node, and where they are in their life."""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal, Self

from pydantic import Field, StrictInt, StrictStr, field_validator, model_validator

from ._conditions import Condition
from ._meta import API_VERSION, ObjectMeta, Timestamp, WireModel
from ._quantity import parse_quantity, parse_throughput


class ProjectPhase(StrEnum):
    """ProjectPhase is where a Project is in its life."""

    PENDING = "Pending"
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"


#: Phases in which a Project occupies its Node and holds its resources (a Terminating one has not let go yet).
ASSIGNED_PHASES: Final = (ProjectPhase.SCHEDULED, ProjectPhase.RUNNING, ProjectPhase.TERMINATING)
#: Phases taken off a Node that is draining or gone; Terminating ones are left to finish (or to time out).
EVICTABLE_PHASES: Final = (ProjectPhase.SCHEDULED, ProjectPhase.RUNNING)
#: Phases in which a Project's spec may be replaced: before it runs, or after it failed (design §3.1).
REPLACEABLE_PHASES: Final = frozenset({ProjectPhase.PENDING, ProjectPhase.FAILED})
#: Phases in which a Project holds nothing on a Node, so DELETE removes it at once.
IDLE_PHASES: Final = frozenset({ProjectPhase.PENDING, ProjectPhase.FAILED, ProjectPhase.TERMINATED})


class VolumeType(StrEnum):
    """VolumeType is the kind of storage a volume gets."""

    EPHEMERAL = "Ephemeral"


class IngressScope(StrEnum):
    """IngressScope is who may reach an ingress."""

    INTERNAL = "Internal"


class EnvVar(WireModel):
    name: StrictStr
    value: StrictStr | None = None


class VolumeMount(WireModel):
    name: StrictStr
    mount_path: StrictStr = Field(alias="mountPath")


class ServiceDef(WireModel):
    """ServiceDef is one container of the Project."""

    name: StrictStr = Field(min_length=1)
    image: StrictStr = Field(min_length=1)
    env: list[EnvVar] | None = None
    volume_mounts: list[VolumeMount] | None = Field(default=None, alias="volumeMounts")


class VolumeDef(WireModel):
    name: StrictStr = Field(min_length=1)
    type: VolumeType


class IngressTarget(WireModel):
    service: StrictStr
    port: StrictInt = Field(ge=1, le=65535)


class IngressAccess(WireModel):
    scope: IngressScope


class IngressDef(WireModel):
    name: StrictStr
    host: StrictStr | None = None
    target: IngressTarget
    access: IngressAccess | None = None


class ResourceRequests(WireModel):
    """ResourceRequests (extension) is what the Project needs of its Node's allocatable."""

    # Cpu: e.g. "500m" or "2"; unset means nothing asked.
    cpu: StrictStr | None = None
    # Memory: e.g. "512Mi"; unset means nothing asked.
    memory: StrictStr | None = None

    @field_validator("cpu", "memory")
    @classmethod
    def _check_quantity(cls, value: str | None) -> str | None:
        if value is not None:
            parse_quantity(value)
        return value


class PathRequirement(StrEnum):
    """PathRequirement is the path to the control plane a Project's Node must have."""

    # DIRECT: peer-to-peer; a Node relayed through DERP (or through a peer relay) does not qualify.
    DIRECT = "Direct"


class ProjectPlacement(WireModel):
    """ProjectPlacement (extension) is what a Project asks of its Node's network; unset fields ask nothing."""

    # PathToControlPlane: "Direct" keeps the Project off Nodes whose path to the control plane is relayed.
    path_to_control_plane: PathRequirement | None = Field(default=None, alias="pathToControlPlane")
    # MinThroughput: e.g. "50Mbps"; the Node's last fresh download measurement must reach it.
    min_throughput: StrictStr | None = Field(default=None, alias="minThroughput")

    @field_validator("min_throughput")
    @classmethod
    def _check_throughput(cls, value: str | None) -> str | None:
        if value is not None:
            parse_throughput(value)
        return value


class ProjectSpec(WireModel):
    """ProjectSpec is what the user declares."""

    services: list[ServiceDef] = Field(min_length=1)
    volumes: list[VolumeDef] | None = None
    ingress: list[IngressDef] | None = None
    # ExpireAt: when the Project should be torn down; unset means never.
    expire_at: Timestamp = Field(default=None, alias="expireAt")
    resources: ResourceRequests | None = None
    # Placement (extension): network facts the Node must have; unset places as before.
    placement: ProjectPlacement | None = None

    @model_validator(mode="after")
    def _check_references(self) -> Self:
        names = [service.name for service in self.services]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ValueError(f"services[{index}].name: duplicate service name {name!r}")
        volumes = {volume.name for volume in self.volumes or ()}
        for s_index, service in enumerate(self.services):
            for m_index, mount in enumerate(service.volume_mounts or ()):
                if mount.name not in volumes:
                    raise ValueError(
                        f"services[{s_index}].volumeMounts[{m_index}].name: "
                        f"{mount.name!r} is not declared in spec.volumes"
                    )
        for i_index, ingress in enumerate(self.ingress or ()):
            if ingress.target.service not in names:
                raise ValueError(
                    f"ingress[{i_index}].target.service: {ingress.target.service!r} is not a service of this project"
                )
        return self


class ProjectStatus(WireModel):
    """ProjectStatus is where the Project is; written by the control plane and the node's runtime."""

    phase: ProjectPhase = ProjectPhase.PENDING
    # NodeRef: the Node the Project is bound to; empty while Pending.
    node_ref: StrictStr | None = Field(default=None, alias="nodeRef")
    conditions: list[Condition] | None = None


class Project(WireModel):
    """Project is a set of services that runs together on one Node."""

    api_version: Literal["caravanserai/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Project"] = "Project"
    metadata: ObjectMeta
    spec: ProjectSpec
    status: ProjectStatus = Field(default_factory=ProjectStatus)

    @property
    def name(self) -> str:
        """name is metadata.name."""
        return self.metadata.name


class ProjectList(WireModel):
    """ProjectList is the answer to listing Projects; items is never null."""

    api_version: Literal["caravanserai/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["ProjectList"] = "ProjectList"
    items: list[Project] = Field(default_factory=list)


class ProjectStatusPatch(WireModel):
    """ProjectStatusPatch is the body of PATCH /projects/{name}/status."""

    phase: ProjectPhase
    reason: StrictStr | None = None
    message: StrictStr | None = None
