"""Reconciler: one pass at a time against FakeEngine, comparing the runtime's state and the exact PATCH bodies."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.projects.reconciler import SWEEP_PERIOD, ReconcileConfig, Reconciler
from agent.runtime import RuntimeClient, RuntimeFailure
from controlplane.api import Project, ProjectList, ProjectPhase, ProjectStatusPatch

from .fake_engine import FakeEngine

NOW = datetime(2026, 11, 30, 10, 0, 30, tzinfo=UTC)
IMAGE = "registry:5000/web:1"


def project(phase: ProjectPhase = ProjectPhase.SCHEDULED, **spec: Any) -> Project:
    doc: dict[str, Any] = {
        "metadata": {"name": "demo"},
        "spec": {
            "services": [
                {
                    "name": "web",
                    "image": IMAGE,
                    "env": [{"name": "A", "value": "1"}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                },
                {"name": "db", "image": "registry:5000/db:1"},
            ],
            "volumes": [{"name": "data", "type": "Ephemeral"}],
            "resources": {"cpu": "500m", "memory": "128Mi"},
            **spec,
        },
        "status": {"phase": phase, "nodeRef": "edge1"},
    }
    return Project.model_validate(doc)


class FakeAPI:
    def __init__(self, *projects: Project) -> None:
        self.projects = {p.name: p for p in projects}
        self.patches: list[dict[str, Any]] = []

    async def list_projects(
        self, *, phases: Collection[ProjectPhase] = (), node_ref: str | None = None, label_selector: str | None = None
    ) -> ProjectList:
        assert node_ref == "edge1"
        return ProjectList(items=[p for p in self.projects.values() if p.status.phase in phases])

    async def patch_project_status(self, name: str, patch: ProjectStatusPatch) -> None:
        self.patches.append(patch.to_wire())
        current = self.projects[name]
        self.projects[name] = current.model_copy(
            update={"status": current.status.model_copy(update={"phase": patch.phase})}
        )


def setup(
    *projects: Project, engine: FakeEngine | None = None, booted_at: datetime | None = None, check_interval: float = 0.0
) -> tuple[FakeAPI, FakeEngine, Reconciler, list[datetime]]:
    engine = engine or FakeEngine(images={IMAGE, "registry:5000/db:1"})
    api = FakeAPI(*projects)
    clock = [NOW]
    reconciler = Reconciler(
        api=api,
        runtime=RuntimeClient("/fake.sock", transport=engine.transport()),
        node_name="edge1",
        now=lambda: clock[0],
        booted_at=booted_at,
        config=ReconcileConfig(runtime_grace=30.0, check_interval=check_interval),
    )
    return api, engine, reconciler, clock


def running(message: str = "All containers running") -> dict[str, str]:
    return {"phase": "Running", "reason": "ContainersRunning", "message": message}


async def test_scheduled_creates_everything_with_go_names_and_reports_running() -> None:
    api, engine, reconciler, _ = setup(project())
    await reconciler.sync_once()
    assert api.patches == [running()]
    assert set(engine.networks) == {"cara-demo"}
    assert set(engine.volumes) == {"cara-demo-data"}
    assert set(engine.containers) == {"demo-web", "demo-db"}
    web = engine.containers["demo-web"]
    assert web["Config"]["Labels"] == {"cara.project": "demo", "cara.service": "web"}
    assert web["Config"]["Env"] == ["A=1"]
    host = web["HostConfig"]
    assert host["NetworkMode"] == "cara-demo"
    assert host["Mounts"] == [{"Type": "volume", "Source": "cara-demo-data", "Target": "/data"}]
    # spec.resources is the Project's: each of its two services gets half.
    assert (host["NanoCpus"], host["Memory"]) == (250_000_000, 64 * 2**20)
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
    assert web["NetworkSettings"]["Networks"]["cara-demo"]["Aliases"] == ["web"]
    assert web["State"]["Running"]
    # The next pass sees Running and healthy containers: no PATCH.
    await reconciler.sync_once()
    assert len(api.patches) == 1
    assert set(reconciler.running) == {"demo"}


async def test_pull_failure_names_the_image_and_rolls_back() -> None:
    engine = FakeEngine(images={IMAGE})  # db's image is neither present nor pullable
    api, engine, reconciler, _ = setup(project(), engine=engine)
    await reconciler.sync_once()
    assert api.patches == [
        {
            "phase": "Failed",
            "reason": "ReconcileError",
            "message": "pull of image registry:5000/db:1 failed: pull access denied for registry:5000/db",
        }
    ]
    assert (engine.containers, engine.networks, engine.volumes) == ({}, {}, {})


async def test_pulls_a_missing_image_that_exists() -> None:
    engine = FakeEngine(images={IMAGE}, pullable={"registry:5000/db:1"})
    api, engine, reconciler, _ = setup(project(), engine=engine)
    await reconciler.sync_once()
    assert api.patches == [running()]
    assert "registry:5000/db:1" in engine.images


async def test_start_failure_rolls_back_only_what_the_pass_made() -> None:
    engine = FakeEngine(images={IMAGE, "registry:5000/db:1"}, fail_start={"demo-db"})
    engine.volumes["cara-demo-data"] = {"Labels": {"cara.project": "demo"}}  # there before: kept
    api, engine, reconciler, _ = setup(project(), engine=engine)
    await reconciler.sync_once()
    assert api.patches[0]["reason"] == "ReconcileError"
    assert "runc create failed" in api.patches[0]["message"]
    assert (engine.containers, engine.networks) == ({}, {})
    assert set(engine.volumes) == {"cara-demo-data"}


@pytest.mark.parametrize(
    ("codes", "want"),
    [
        ({"web": 0, "db": 3}, ("ContainerCrashed", "service db (container demo-db) exited with code 3")),
        ({"web": 0}, ("ContainerExited", "service web (container demo-web) exited with code 0")),
        ({"web": 137}, ("ContainerCrashed", "service web (container demo-web) exited with code 137")),
    ],
    ids=["crash-checked-before-exit", "clean-exit", "killed"],
)
async def test_running_reports_exits(codes: dict[str, int], want: tuple[str, str]) -> None:
    api, engine, reconciler, _ = setup(project())
    await reconciler.sync_once()
    for service, code in codes.items():
        engine.exit(f"demo-{service}", code)
    await reconciler.sync_once()
    assert api.patches[1:] == [{"phase": "Failed", "reason": want[0], "message": want[1]}]


async def test_missing_container_of_a_running_project_is_recreated() -> None:
    api, engine, reconciler, _ = setup(project())
    await reconciler.sync_once()
    engine.containers.clear()
    engine.networks.clear()  # a runtime wiped by a reboot
    await reconciler.sync_once()
    assert api.patches == [running()]  # no Failed, no second PATCH: it stays Running
    assert set(engine.containers) == {"demo-web", "demo-db"}
    assert all(c["State"]["Running"] for c in engine.containers.values())


async def test_container_ended_by_a_reboot_is_started_again() -> None:
    booted = NOW - timedelta(seconds=5)
    api, engine, reconciler, _ = setup(project(), booted_at=booted)
    await reconciler.sync_once()
    engine.exit("demo-web", 255, finished_at="2026-11-30T09:59:00Z")  # before the boot
    await reconciler.sync_once()
    assert api.patches == [running()]
    assert engine.containers["demo-web"]["State"]["Running"]


async def test_missing_container_that_cannot_be_recreated_is_container_missing() -> None:
    api, engine, reconciler, _ = setup(project())
    await reconciler.sync_once()
    del engine.containers["demo-db"]
    engine.images.discard("registry:5000/db:1")
    await reconciler.sync_once()
    assert api.patches[1]["reason"] == "ContainerMissing"
    assert api.patches[1]["message"].startswith("service db (container demo-db) is missing and cannot be recreated: ")
    assert "demo-web" in engine.containers  # what was not made by this pass stays


async def test_terminating_removes_everything_and_reports_terminated() -> None:
    api, engine, reconciler, _ = setup(project())
    await reconciler.sync_once()
    api.projects["demo"] = project(ProjectPhase.TERMINATING)
    await reconciler.sync_once()
    assert api.patches[1:] == [
        {"phase": "Terminated", "reason": "ResourcesRemoved", "message": "All Docker resources have been removed"}
    ]
    assert (engine.containers, engine.networks, engine.volumes) == ({}, {}, {})
    assert reconciler.running == {}


async def test_expired_project_goes_terminating_then_terminated() -> None:
    api, _engine, reconciler, _ = setup(project(expireAt="2026-11-30T10:00:00Z"))
    await reconciler.sync_once()
    assert api.patches == [{"phase": "Terminating", "reason": "Expired", "message": "spec.expireAt has passed"}]
    await reconciler.sync_once()
    assert api.patches[-1]["phase"] == "Terminated"


async def test_runtime_down_fails_projects_only_after_the_grace() -> None:
    api, engine, reconciler, clock = setup(
        project(),
        project(ProjectPhase.RUNNING).model_copy(
            update={"metadata": project().metadata.model_copy(update={"name": "other"})}
        ),
    )
    engine.down = True
    with pytest.raises(Exception, match="unreachable"):
        await reconciler.sync_once()  # within the grace: nothing reported (run() logs and retries)
    assert api.patches == []
    clock[0] = NOW + timedelta(seconds=31)
    await reconciler.sync_once()
    reasons = sorted((p["reason"], p["message"]) for p in api.patches)
    assert [r for r, _ in reasons] == ["InspectError", "ReconcileError"]
    assert all("container runtime at /fake.sock is unreachable" in m for _, m in reasons)


async def test_no_runtime_configured_fails_bound_projects_at_once() -> None:
    api = FakeAPI(project())
    reconciler = Reconciler(api=api, runtime=None, node_name="edge1", now=lambda: NOW)
    await reconciler.sync_once()
    assert api.patches == [
        {
            "phase": "Failed",
            "reason": "ReconcileError",
            "message": "container runtime (none configured: set --runtime-socket or CONTAINER_RUNTIME_SOCKET) "
            "is unreachable: no socket configured",
        }
    ]


async def test_containers_of_a_project_no_longer_bound_here_are_swept() -> None:
    api, engine, reconciler, _ = setup(project())
    await reconciler.sync_once()
    failed = project(ProjectPhase.FAILED).model_copy(
        update={"metadata": project().metadata.model_copy(update={"name": "kept"})}
    )
    engine.containers["kept-web"] = {
        **engine.containers["demo-web"],
        "Id": "id-kept",
        "Config": {"Labels": {"cara.project": "kept", "cara.service": "web"}},
    }
    engine.containers["stray"] = {**engine.containers["demo-web"], "Id": "id-stray", "Config": {"Labels": {}}}
    api.projects["kept"] = failed
    del api.projects["demo"]  # moved to another node by a drain: no longer listed for edge1
    await reconciler.sync_once()
    assert set(engine.containers) == {"kept-web", "stray"}  # Failed stays for logs; unlabelled is not ours
    assert "cara-demo" not in engine.networks and "cara-demo-data" not in engine.volumes


async def test_a_list_older_than_our_report_is_not_acted_on() -> None:
    api, _engine, reconciler, clock = setup(project())
    stale = api.projects["demo"]
    await reconciler.sync_once()
    api.projects["demo"] = stale  # a list answered before our PATCH landed: still Scheduled
    await reconciler.sync_once()
    assert api.patches == [running()]
    clock[0] = NOW + timedelta(seconds=11)  # no longer a race: the list is believed again
    await reconciler.sync_once()
    assert api.patches == [running(), running()]


def paths(engine: FakeEngine) -> list[str]:
    """paths is the runtime calls made since the last clear, without their queries."""
    return [call.split("?")[0] for call in engine.calls]


async def test_an_idle_pass_leaves_the_runtime_alone_and_the_sweep_runs_on_change_or_after_its_period() -> None:
    api, engine, reconciler, clock = setup()
    await reconciler.sync_once()  # the first pass sweeps (Projects deleted while the agent was away)
    assert paths(engine) == ["GET /_ping", "GET /containers/json"]
    engine.calls.clear()
    clock[0] = NOW + SWEEP_PERIOD - timedelta(seconds=1)
    await reconciler.sync_once()
    assert engine.calls == []  # nothing bound, nothing changed: no call at all
    clock[0] = NOW + SWEEP_PERIOD
    await reconciler.sync_once()
    assert paths(engine) == ["GET /_ping", "GET /containers/json"]
    engine.calls.clear()
    api.projects["demo"] = project(ProjectPhase.FAILED)  # the bound set changed: swept at once
    await reconciler.sync_once()
    assert paths(engine) == ["GET /_ping", "GET /containers/json"]


async def test_a_sweep_that_could_not_list_is_tried_again_on_the_next_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    _api, engine, reconciler, _clock = setup()
    runtime = reconciler.runtime
    assert runtime is not None

    async def refused(labels: dict[str, str]) -> list[Any]:
        raise RuntimeFailure("/fake.sock", "list refused")

    monkeypatch.setattr(runtime, "list_containers", refused)
    await reconciler.sync_once()
    monkeypatch.undo()
    engine.calls.clear()
    await reconciler.sync_once()
    assert paths(engine) == ["GET /_ping", "GET /containers/json"]


async def test_a_running_project_is_checked_without_a_ping_and_still_failed_when_the_runtime_stays_down() -> None:
    api, engine, reconciler, clock = setup(project())
    await reconciler.sync_once()  # Scheduled -> Running
    engine.calls.clear()
    await reconciler.sync_once()
    assert paths(engine) == ["GET /containers/demo-web/json", "GET /containers/demo-db/json"]
    engine.down = True
    await reconciler.sync_once()  # the inspect finds it unreachable: logged, and the next pass pings
    with pytest.raises(Exception, match="unreachable"):
        await reconciler.sync_once()  # within the grace: nothing reported
    assert api.patches == [running()]
    clock[0] = NOW + timedelta(seconds=31)
    await reconciler.sync_once()
    assert [(p["phase"], p["reason"]) for p in api.patches] == [
        ("Running", "ContainersRunning"),
        ("Failed", "InspectError"),
    ]


async def test_a_running_project_is_checked_every_check_interval_not_every_pass() -> None:
    api, engine, reconciler, clock = setup(project(), check_interval=5.0)
    await reconciler.sync_once()  # Scheduled -> Running
    engine.calls.clear()
    await reconciler.sync_once()  # first check of the Running Project
    assert paths(engine) == ["GET /containers/demo-web/json", "GET /containers/demo-db/json"]
    engine.calls.clear()
    engine.exit("demo-web", 137)
    clock[0] = NOW + timedelta(seconds=4.9)
    await reconciler.sync_once()
    assert engine.calls == [] and api.patches == [running()]
    clock[0] = NOW + timedelta(seconds=5)
    await reconciler.sync_once()
    assert api.patches[-1]["reason"] == "ContainerCrashed"
