"""Project routes of design §3.1: CRUD with phase rules, list filters, and the status PATCH."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from controlplane.api import (
    IDLE_PHASES,
    REPLACEABLE_PHASES,
    ConditionStatus,
    InvalidObject,
    Project,
    ProjectConditionType,
    ProjectList,
    ProjectPhase,
    ProjectStatus,
    ProjectStatusPatch,
    decode,
    decode_valid,
    set_condition,
)
from controlplane.store.base import AlreadyExists, Conflict

from ..context import CallerDep, Ctx, read_json
from ..identity import Forbidden, Role, require_reader, require_writer
from ..problems import problem_responses
from ..watch import ListSource, watch_response, watch_responses
from ._common import (
    DryRun,
    TimeoutSeconds,
    WatchFlag,
    check_path_name,
    exists,
    is_dry_run,
    json_body,
    parse_selector,
    wire,
    without_status,
)

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


@router.get("", responses={**watch_responses(ProjectList), **problem_responses(400)})
async def list_projects(
    request: Request,
    context: Ctx,
    caller: CallerDep,
    phase: Annotated[list[str] | None, Query()] = None,
    node_ref: Annotated[str | None, Query(alias="nodeRef")] = None,
    label_selector: Annotated[str | None, Query(alias="labelSelector")] = None,
    watch: WatchFlag = False,
    timeout_seconds: TimeoutSeconds = None,
) -> Response:
    """list answers a ProjectList; with watch=true, a stream of events instead (controlplane.server.watch)."""
    require_reader(caller)
    phases = []
    for value in phase or ():
        try:
            phases.append(ProjectPhase(value))
        except ValueError:
            allowed = ", ".join(p.value for p in ProjectPhase)
            raise InvalidObject([f"phase: {value!r} is not one of {allowed}"]) from None
    selector = parse_selector(label_selector)

    async def matching() -> list[Project]:
        projects = await context.store.list_projects(
            phases=phases or None, node_ref=node_ref or None, labels=selector.equalities() or None
        )
        return [p for p in projects if selector.matches(p.metadata.labels)]

    if watch:

        async def list_all() -> list[dict[str, Any]]:
            return [project.to_wire() for project in await matching()]

        return watch_response(ListSource(list_all), selector, timeout_seconds, request, context.stopping)
    return wire(ProjectList(items=await matching()))


@router.post(
    "",
    status_code=201,
    responses={201: {"model": Project}, **problem_responses(400, 409, 413)},
    openapi_extra=json_body(Project),
)
async def create_project(request: Request, context: Ctx, caller: CallerDep, dry_run: DryRun = None) -> JSONResponse:
    require_writer(caller)
    project = decode_valid(Project, without_status(await read_json(request)))
    project.metadata.created_at = project.metadata.updated_at = context.now()
    project.status = ProjectStatus(phase=ProjectPhase.PENDING)
    if is_dry_run(dry_run):
        if await exists(context.store.get_project, project.name):
            raise AlreadyExists("project", project.name)
        return wire(project, 201)
    return wire(await context.store.create_project(project), 201)


@router.get("/{name}", responses={200: {"model": Project}, **problem_responses(404)})
async def get_project(name: str, context: Ctx, caller: CallerDep) -> JSONResponse:
    require_reader(caller)
    return wire(await context.store.get_project(name))


@router.put(
    "/{name}",
    responses={200: {"model": Project}, **problem_responses(400, 404, 409, 413)},
    openapi_extra=json_body(Project),
)
async def replace_project(
    name: str, request: Request, context: Ctx, caller: CallerDep, dry_run: DryRun = None
) -> JSONResponse:
    require_writer(caller)
    body = without_status(await read_json(request))
    check_path_name(body, name)
    if isinstance(body, dict) and "metadata" not in body:
        body = {**body, "metadata": {"name": name}}
    given = decode_valid(Project, body)
    now = context.now()

    def replace(project: Project) -> Project:
        metadata = project.metadata.model_copy(
            update={"labels": given.metadata.labels, "annotations": given.metadata.annotations, "updated_at": now}
        )
        if project.status.phase not in REPLACEABLE_PHASES:
            if given.spec.to_wire() == project.spec.to_wire():  # labels and annotations only: no spec change
                return project.model_copy(update={"metadata": metadata})
            raise Conflict(
                f'project "{name}" is {project.status.phase}; its spec can be replaced only while Pending or Failed'
            )
        # A failed project with a new spec gets another chance: back to Pending for the scheduler.
        status = ProjectStatus(phase=ProjectPhase.PENDING, conditions=project.status.conditions)
        return project.model_copy(update={"metadata": metadata, "spec": given.spec, "status": status})

    if is_dry_run(dry_run):
        return wire(replace(await context.store.get_project(name)))
    return wire(await context.store.update_project(name, replace))


@router.delete("/{name}", status_code=204, responses={202: {"model": Project}, **problem_responses(400, 404)})
async def delete_project(
    name: str, context: Ctx, caller: CallerDep, force: Annotated[bool, Query()] = False
) -> Response:
    """delete removes an idle project at once (204); a placed one goes Terminating (202) unless force=true."""
    require_writer(caller)
    project = await context.store.get_project(name)
    if force or project.status.phase in IDLE_PHASES:
        await context.store.delete_project(name)
        return Response(status_code=204)
    now = context.now()

    def terminate(current: Project) -> Project:
        if current.status.phase is ProjectPhase.TERMINATING:
            return current
        conditions = set_condition(
            current.status.conditions,
            "Terminating",
            ConditionStatus.TRUE,
            "DeleteRequested",
            "deletion was requested; waiting for the node to stop the services",
            now,
        )
        status = current.status.model_copy(update={"phase": ProjectPhase.TERMINATING, "conditions": conditions})
        return current.model_copy(update={"status": status})

    updated = await context.store.update_project(name, terminate)
    return wire(updated, 202)


@router.patch(
    "/{name}/status",
    status_code=204,
    responses=problem_responses(400, 404, 413),
    openapi_extra=json_body(ProjectStatusPatch),
)
async def patch_project_status(name: str, request: Request, context: Ctx, caller: CallerDep) -> Response:
    """patch_status records the phase a node reports for the project, with its reason and message."""
    patch = decode(ProjectStatusPatch, await read_json(request))
    now = context.now()
    if caller.role is not Role.ADMIN:
        project = await context.store.get_project(name)
        if caller.role is not Role.NODE or not project.status.node_ref:
            raise Forbidden(f"{caller.role} {caller.name!r} may not set the status of project {name!r}")
        await context.writes.authorize(caller, project.status.node_ref)

    def apply(project: Project) -> Project:
        conditions = set_condition(
            project.status.conditions,
            ProjectConditionType.PHASE,
            ConditionStatus.TRUE,
            patch.reason or str(patch.phase),
            patch.message or "",
            now,
        )
        status = project.status.model_copy(update={"phase": patch.phase, "conditions": conditions})
        metadata = project.metadata.model_copy(update={"updated_at": now})
        return project.model_copy(update={"status": status, "metadata": metadata})

    await context.store.update_project(name, apply)
    return Response(status_code=204)
