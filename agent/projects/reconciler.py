"""Reconciler: makes the runtime match the Projects the control plane binds to this Node, and reports their phase.

One pass (`sync_once`) lists this Node's Scheduled, Running and Terminating Projects and, per Project:

- Scheduled: creates what is missing (network `cara-<p>`, volumes `cara-<p>-<v>`, images, containers `<p>-<svc>`),
  then reports Running/ContainersRunning; on any error removes what this pass made and reports
  Failed/ReconcileError with the runtime's words (a failed pull names the image).
- Running (every `check_interval`, 5 s, not every pass): checks every container, crashes first (non-zero exit →
  ContainerCrashed, exit 0 → ContainerExited, inspect failure → InspectError). A *missing* container is recreated,
  and one that ended before this host booted is started again (the Go agent reports ContainerMissing or a crash:
  after an edge reboot or a runtime reset that fails a whole fleet for nothing); ContainerMissing only when that
  fails.
- Terminating: stops and removes every container labelled `cara.project=<p>`, the network and the volumes, then
  reports Terminated/ResourcesRemoved, or Failed/RemoveError.
- A Scheduled or Running Project whose `spec.expireAt` has passed is reported Terminating (reason Expired); the
  next pass removes it like any other.

After a pass whose bound set differs from the last sweep's (and at least every SWEEP_PERIOD), containers labelled
with a Project no longer bound to this Node (deleted while the agent was away, or moved elsewhere by a drain or a
reschedule) are removed with their network and volumes; a Failed Project's containers stay until it is deleted, for
`logs`. A pass with no Project to act on and no sweep due does not call the runtime at all.

With no runtime configured, or one unreachable for longer than `runtime_grace`, every bound Project is reported
Failed with a message saying so; heartbeats are another loop and go on regardless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from controlplane.api import Project, ProjectList, ProjectPhase, ProjectStatusPatch
from controlplane.client import ClientError
from controlplane.supervision import Progress

from ..runtime import NoSuchObject, RuntimeClient, RuntimeFailure, RuntimeUnreachable
from .names import PROJECT_LABEL, container_name, network_name, project_labels, volume_name
from .specs import LogLimits, container_spec

log = logging.getLogger("cara.agent.projects")

# Reasons and messages of the PATCHes, as the Go agent sends them.
CONTAINERS_RUNNING: Final = "ContainersRunning"
ALL_RUNNING: Final = "All containers running"
RECONCILE_ERROR: Final = "ReconcileError"
CONTAINER_CRASHED: Final = "ContainerCrashed"
CONTAINER_EXITED: Final = "ContainerExited"
CONTAINER_MISSING: Final = "ContainerMissing"
INSPECT_ERROR: Final = "InspectError"
REMOVE_ERROR: Final = "RemoveError"
RESOURCES_REMOVED: Final = "ResourcesRemoved"
ALL_REMOVED: Final = "All Docker resources have been removed"
# Ours: a Project past its spec.expireAt.
EXPIRED: Final = "Expired"

#: The phases this Node acts on (the Go agent's poll).
WATCHED: Final = (ProjectPhase.SCHEDULED, ProjectPhase.RUNNING, ProjectPhase.TERMINATING)
#: How long a listed phase older than our own report is taken for a stale list (see Reconciler._stale).
STALE_AFTER: Final = timedelta(seconds=10)
#: The order of phases in a Project's life, for telling a stale list from news (a delete after Failed is news).
_RANK: Final = {
    ProjectPhase.PENDING: 0,
    ProjectPhase.SCHEDULED: 0,
    ProjectPhase.RUNNING: 1,
    ProjectPhase.FAILED: 2,
    ProjectPhase.TERMINATING: 2,
    ProjectPhase.TERMINATED: 3,
}
#: The key of the orphan sweep's task among the Projects' ones (not a valid Project name).
SWEEP: Final = "<sweep>"
#: The orphan sweep runs when the set of Projects bound here changed (how orphans come about) and at least this
#: often otherwise (containers labelled by hand, a sweep that could not finish): a list of every labelled
#: container each second was a third of the agent's idle CPU.
SWEEP_PERIOD: Final = timedelta(seconds=60)
#: The phases whose containers stay on this Node: WATCHED, and Failed (kept for `logs` until deleted).
KEPT: Final = (*WATCHED, ProjectPhase.FAILED)


class ProjectsAPI(Protocol):
    """ProjectsAPI is what the reconciler needs of controlplane.client.Client."""

    async def list_projects(
        self, *, phases: Collection[ProjectPhase] = (), node_ref: str | None = None, label_selector: str | None = None
    ) -> ProjectList: ...

    async def patch_project_status(self, name: str, patch: ProjectStatusPatch) -> None: ...


@dataclass(frozen=True, slots=True)
class ReconcileConfig:
    """ReconcileConfig: timing and limits of the loop."""

    # poll_interval: seconds between passes. 1 s keeps apply → Running within the 5 s target (the Go agent polls
    # every 10 s); the list is filtered by nodeRef on the server, so a pass costs one small indexed query.
    poll_interval: float = 1.0
    # check_interval: seconds between checks of a Running Project's containers (a crash, a container gone): an
    # inspect per container every pass was over a third of an agent's CPU with one Project (issue 16: 0.5 % of a
    # core); the Go agent checks every 10 s. Scheduled and Terminating Projects are acted on at every pass.
    check_interval: float = 5.0
    # runtime_grace: how long the runtime may be unreachable before bound Projects are failed (a restart of
    # dockerd or podman's service takes a second or two and must not fail anything).
    runtime_grace: float = 30.0
    # stop_grace: seconds between SIGTERM and SIGKILL when removing (the Go agent's 10 s).
    stop_grace: int = 10
    logs: LogLimits = field(default_factory=LogLimits)


class _Rollback(Exception):
    """_Rollback carries the error that aborted a create, after what the pass made was removed."""


class Reconciler:
    """Reconciler runs the Projects bound to node_name on runtime (None: no runtime configured)."""

    def __init__(
        self,
        *,
        api: ProjectsAPI,
        runtime: RuntimeClient | None,
        node_name: str,
        now: Callable[[], datetime],
        booted_at: datetime | None = None,
        config: ReconcileConfig | None = None,
    ) -> None:
        self._api = api
        self._runtime = runtime
        self._node = node_name
        self._now = now
        # booted_at: when this host booted; a container that ended before it was ended by the reboot, not by itself.
        self._booted_at = booted_at
        self._config = config or ReconcileConfig()
        self._unreachable_since: datetime | None = None
        # The phase last reported per Project, and when (see _stale).
        self._reported: dict[str, tuple[ProjectPhase, datetime]] = {}
        # The work in flight, by Project name (SWEEP for the orphan sweep).
        self._busy: dict[str, asyncio.Task[None]] = {}
        # When each Running Project's containers were last checked.
        self._checked: dict[str, datetime] = {}
        # The bound set the last sweep started with, and when (None: no sweep yet, or the last one failed).
        self._swept: tuple[frozenset[str], datetime] | None = None
        #: The Running Projects of the last pass, by name (the ingress and the agent API read it).
        self.running: dict[str, Project] = {}

    @property
    def runtime(self) -> RuntimeClient | None:
        """runtime is the container runtime client (None when none is configured)."""
        return self._runtime

    async def sync_once(self, *, wait: bool = True) -> None:
        """sync_once runs one pass over this Node's Projects (see the module docstring).

        Each Project's work is a task of its own, and a Project whose previous work still runs (a stop waiting out
        its grace, a pull) is skipped, so one slow Project never delays another's start. With wait (tests), the
        pass returns when its work is done; the loop does not wait.
        """
        bound = (await self._api.list_projects(phases=KEPT, node_ref=self._node)).items
        projects = [p for p in bound if p.status.phase in WATCHED]
        self.running = {p.name: p for p in projects if p.status.phase == ProjectPhase.RUNNING}
        names = frozenset(p.name for p in bound)
        for gone in self._checked.keys() - names:
            del self._checked[gone]
        fresh = [p for p in projects if not self._is_busy(p.name) and not self._stale(p) and self._due(p)]
        sweep = self._runtime is not None and not self._is_busy(SWEEP) and self._sweep_due(names)
        # The runtime is pinged only when this pass creates, removes or sweeps, or it was found unreachable: checking
        # a Running Project inspects its containers anyway, and an inspect that cannot reach the runtime marks it
        # (in _one), so the next pass pings and fails the Projects after the grace as before.
        acting = any(p.status.phase != ProjectPhase.RUNNING for p in fresh)
        ping = acting or sweep or self._runtime is None or self._unreachable_since is not None
        down = await self._runtime_down() if ping else None
        started = [self._spawn(p.name, self._one(p, down)) for p in fresh]
        if sweep and down is None:
            self._swept = (names, self._now())
            started.append(self._spawn(SWEEP, self._sweep(names)))
        if wait:
            await asyncio.gather(*started)

    def _stale(self, project: Project) -> bool:
        """_stale is whether the listed phase predates our own last report (a list answered before our PATCH
        landed): acting on it would redo the work and report again. After STALE_AFTER the list is trusted."""
        reported = self._reported.get(project.name)
        if reported is None or _RANK[project.status.phase] >= _RANK[reported[0]]:
            return False
        return self._now() - reported[1] < STALE_AFTER

    def _due(self, project: Project) -> bool:
        """_due is whether this pass acts on project: always, unless it is Running and was checked less than
        check_interval ago (then it is marked as checked now)."""
        if project.status.phase != ProjectPhase.RUNNING:
            self._checked.pop(project.name, None)
            return True
        now, last = self._now(), self._checked.get(project.name)
        if last is not None and (now - last).total_seconds() < self._config.check_interval:
            return False
        self._checked[project.name] = now
        return True

    def _sweep_due(self, bound: frozenset[str]) -> bool:
        """_sweep_due is whether the orphan sweep should run: the bound set changed since the last, or SWEEP_PERIOD
        has passed."""
        return self._swept is None or self._swept[0] != bound or self._now() - self._swept[1] >= SWEEP_PERIOD

    def _is_busy(self, key: str) -> bool:
        task = self._busy.get(key)
        return task is not None and not task.done()

    def _spawn(self, key: str, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=f"project {key}")
        self._busy[key] = task
        task.add_done_callback(_log_failure)
        return task

    async def run(self, stop: asyncio.Event, progress: Progress | None = None) -> None:
        """run starts a pass every poll_interval until stop is set, ticking progress (the agent's supervisor
        watches it); a pass that fails on the control plane or the runtime is logged and retried."""
        try:
            while not stop.is_set():
                try:
                    await self.sync_once(wait=False)
                except (ClientError, RuntimeFailure) as exc:  # the next pass retries
                    log.warning("project reconcile pass failed: %s", exc)
                if progress is not None:
                    progress.tick(within=self._config.poll_interval)
                try:
                    await asyncio.wait_for(stop.wait(), self._config.poll_interval)
                except TimeoutError:
                    pass
        finally:
            for task in self._busy.values():
                task.cancel()

    async def _runtime_down(self) -> RuntimeUnreachable | None:
        """_runtime_down returns why the runtime cannot be used once it has been down past the grace, else None."""
        if self._runtime is None:
            return RuntimeUnreachable("", "no socket configured")
        try:
            await self._runtime.ping()
        except RuntimeUnreachable as exc:
            now = self._now()
            self._unreachable_since = self._unreachable_since or now
            if (now - self._unreachable_since).total_seconds() >= self._config.runtime_grace:
                return exc
            raise  # within the grace: skip this pass, change nothing
        except RuntimeFailure:
            pass
        self._unreachable_since = None
        return None

    async def _one(self, project: Project, down: RuntimeUnreachable | None) -> None:
        phase = project.status.phase
        try:
            if phase != ProjectPhase.TERMINATING and _expired(project, self._now()):
                await self._patch(project, ProjectPhase.TERMINATING, EXPIRED, "spec.expireAt has passed")
            elif down is not None:
                await self._fail_down(project, down)
            elif phase == ProjectPhase.SCHEDULED:
                await self._start(project)
            elif phase == ProjectPhase.RUNNING:
                await self._check(project)
            elif phase == ProjectPhase.TERMINATING:
                await self._remove(project)
        except RuntimeUnreachable as exc:
            self._unreachable_since = self._unreachable_since or self._now()
            log.warning("project %s: %s; retrying", project.name, exc)

    async def _fail_down(self, project: Project, down: RuntimeUnreachable) -> None:
        if project.status.phase == ProjectPhase.TERMINATING:
            if self._runtime is None:  # nothing can have been made here
                await self._patch(project, ProjectPhase.TERMINATED, RESOURCES_REMOVED, "No container runtime on node")
            else:
                await self._patch(project, ProjectPhase.FAILED, REMOVE_ERROR, str(down))
            return
        reason = RECONCILE_ERROR if project.status.phase == ProjectPhase.SCHEDULED else INSPECT_ERROR
        await self._patch(project, ProjectPhase.FAILED, reason, str(down))

    # --- Scheduled ----------------------------------------------------------------------------------

    async def _start(self, project: Project) -> None:
        log.info("project %s: bound to this node; creating what is missing", project.name)
        try:
            await self.ensure(project)
        except _Rollback as exc:
            await self._patch(project, ProjectPhase.FAILED, RECONCILE_ERROR, str(exc))
            return
        await self._patch(project, ProjectPhase.RUNNING, CONTAINERS_RUNNING, ALL_RUNNING)

    async def ensure(self, project: Project) -> None:
        """ensure creates and starts whatever of project is missing; raises _Rollback (after undoing what it made)
        when something fails, and RuntimeUnreachable (undoing nothing: the runtime is gone) when the socket is."""
        rt = self._require()
        made_containers: list[str] = []
        made_volumes: list[str] = []
        made_network: str | None = None
        labels = project_labels(project.name)
        try:
            network = network_name(project.name)
            try:
                await rt.inspect_network(network)
            except NoSuchObject:
                await rt.create_network(network, labels)
                made_network = network
            existing = set(await rt.list_volumes(labels))
            for volume in project.spec.volumes or ():
                name = volume_name(project.name, volume.name)
                if name not in existing:
                    await rt.create_volume(name, labels)
                    made_volumes.append(name)
            for service in project.spec.services:
                name = container_name(project.name, service.name)
                try:
                    current = await rt.inspect_container(name)
                except NoSuchObject:
                    if not await rt.has_image(service.image):
                        await rt.pull_image(service.image)
                    await rt.create_container(name, container_spec(project, service, self._config.logs))
                    made_containers.append(name)
                    await rt.start_container(name)
                    continue
                if not current.state.running:
                    await rt.start_container(name)
        except RuntimeUnreachable:
            raise
        except RuntimeFailure as exc:
            await self._undo(made_containers, made_volumes, made_network)
            raise _Rollback(str(exc)) from exc

    async def _undo(self, containers: list[str], volumes: list[str], network: str | None) -> None:
        rt = self._require()
        for name in containers:
            await _quietly(rt.remove_container(name))
        for name in volumes:
            await _quietly(rt.remove_volume(name))
        if network is not None:
            await _quietly(rt.remove_network(network))

    # --- Running ------------------------------------------------------------------------------------

    async def _check(self, project: Project) -> None:
        rt = self._require()
        missing: list[str] = []
        exited: list[tuple[str, str, int, bool]] = []
        for service in project.spec.services:
            name = container_name(project.name, service.name)
            try:
                state = (await rt.inspect_container(name)).state
            except NoSuchObject:
                missing.append(service.name)
                continue
            except RuntimeUnreachable:
                raise
            except RuntimeFailure as exc:
                await self._patch(project, ProjectPhase.FAILED, INSPECT_ERROR, f"inspect {name}: {exc}")
                return
            if not state.running and self._ended_by_reboot(state.finished_at):
                missing.append(service.name)  # ensure() starts it again
            elif not state.running:
                exited.append((service.name, name, state.exit_code, state.oom_killed))
        crashed = [item for item in exited if item[2] != 0]
        if crashed:
            svc, name, code, oom = crashed[0]
            why = " (out of memory)" if oom else ""
            message = f"service {svc} (container {name}) exited with code {code}{why}"
            await self._patch(project, ProjectPhase.FAILED, CONTAINER_CRASHED, message)
        elif exited:
            svc, name, _, _ = exited[0]
            message = f"service {svc} (container {name}) exited with code 0"
            await self._patch(project, ProjectPhase.FAILED, CONTAINER_EXITED, message)
        elif missing:
            log.info("project %s: recreating missing containers of %s", project.name, ", ".join(missing))
            try:
                await self.ensure(project)
            except _Rollback as exc:
                message = f"service {missing[0]} (container {container_name(project.name, missing[0])}) is missing "
                await self._patch(
                    project, ProjectPhase.FAILED, CONTAINER_MISSING, f"{message}and cannot be recreated: {exc}"
                )

    def _ended_by_reboot(self, finished_at: datetime | None) -> bool:
        return self._booted_at is not None and finished_at is not None and finished_at < self._booted_at

    # --- Terminating --------------------------------------------------------------------------------

    async def _remove_resources(self, project: str, volumes: Iterable[str]) -> None:
        """_remove_resources stops and removes everything of project: containers, network, volumes."""
        rt = self._require()
        labels = project_labels(project)
        for container in await rt.list_containers(labels):
            if container.state == "running":
                await rt.stop_container(container.id, grace=self._config.stop_grace)
            await rt.remove_container(container.id)
        await rt.remove_network(network_name(project))
        names = set(await rt.list_volumes(labels))
        names.update(volume_name(project, volume) for volume in volumes)
        for name in sorted(names):
            await rt.remove_volume(name)

    async def _remove(self, project: Project) -> None:
        try:
            await self._remove_resources(project.name, [volume.name for volume in project.spec.volumes or ()])
        except RuntimeUnreachable:
            raise
        except RuntimeFailure as exc:
            await self._patch(project, ProjectPhase.FAILED, REMOVE_ERROR, str(exc))
            return
        await self._patch(project, ProjectPhase.TERMINATED, RESOURCES_REMOVED, ALL_REMOVED)

    # --- orphans ------------------------------------------------------------------------------------

    async def _sweep(self, bound: frozenset[str]) -> None:
        """_sweep removes the containers, networks and volumes of Projects no longer bound to this Node: deleted
        while the agent was away, or moved elsewhere (drained, rescheduled while this Node was cut off)."""
        rt = self._require()
        try:
            containers = await rt.list_containers({PROJECT_LABEL: ""})
        except RuntimeFailure as exc:
            log.warning("cannot list containers for the orphan sweep: %s", exc)
            self._swept = None  # the next pass tries again
            return
        orphans = {(c.labels or {}).get(PROJECT_LABEL, "") for c in containers} - bound - {""}
        for name in sorted(orphans):
            log.info("project %s is no longer bound to this node; removing its containers", name)
            try:
                await self._remove_resources(name, ())
            except RuntimeFailure as exc:
                log.warning("project %s: orphan removal failed: %s", name, exc)

    # --- helpers ------------------------------------------------------------------------------------

    def _require(self) -> RuntimeClient:
        if self._runtime is None:
            raise RuntimeUnreachable("", "no socket configured")
        return self._runtime

    async def _patch(self, project: Project, phase: ProjectPhase, reason: str, message: str) -> None:
        log.info("project %s: %s (%s: %s)", project.name, phase, reason, message)
        await self._api.patch_project_status(
            project.name, ProjectStatusPatch(phase=phase, reason=reason, message=message)
        )
        self._reported[project.name] = (phase, self._now())
        if phase != ProjectPhase.RUNNING:
            self.running.pop(project.name, None)
        else:
            self.running[project.name] = project


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("%s failed: %s", task.get_name(), task.exception())


def _expired(project: Project, now: datetime) -> bool:
    expire_at = project.spec.expire_at
    return expire_at is not None and expire_at.year > 1 and expire_at <= now


async def _quietly(call: Awaitable[None]) -> None:
    """_quietly awaits a best-effort cleanup step; its failure is logged, never raised (rollback goes on)."""
    try:
        await call
    except RuntimeFailure as exc:
        log.warning("rollback step failed: %s", exc)
