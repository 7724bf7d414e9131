"""Real containers in the lab: a podman Docker-API service in every edge, and an image registry on the tailnet.

`up` (after the tailnet lab is up) builds a small busybox-static image from Debian's own package (nothing is pulled
from outside), starts Debian's `docker-registry` in the control host on its tailnet IP, port 5000, pushes the image
there, starts `podman system service` in each edge and pre-pulls the image into each edge's own storage. Each edge's
podman has its own --root/--runroot, network config dir, per-boot tmp dir, file locks and socket under the lab dir,
as a machine of its own would: with a shared /run/libpod, one edge's `system reset` makes another edge's podman
think the machine rebooted and forget its containers' network namespaces, which `lab down` then leaves behind. It
runs in the edge's network namespace through `nsenter --net` (not `ip netns exec`, whose fresh /sys hides the cgroup
mounts runc needs).

Images are named `lab-registry:5000/NAME:TAG`; each edge's registries.conf maps that prefix to the control host's
tailnet address and marks it insecure (plain HTTP: the tailnet already encrypts).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from . import system as sy
from .plan import LabError, Plan
from .state import load_state, plan_of_running

REGISTRY_HOST = "control"
REGISTRY_PORT = 5000
REGISTRY_NAME = "lab-registry:5000"
#: The images the lab builds: name → (command, files). Each is busybox-static plus a few files.
WEB_IMAGE = f"{REGISTRY_NAME}/web:1"
#: The same server with another page (so another layer), in the registry only: what a Project pulls on start.
PULL_IMAGE = f"{REGISTRY_NAME}/web:2"
BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "httpd", "echo", "cat", "sleep", "ls", "nc", "wget", "date", "env", "true", "false")
WEB_CMD = ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]
WEB_INDEX = "hello from a cara lab container\n"
START_TIMEOUT = 30.0

CONTAINERS_CONF = """[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{tmp}"
lock_type = "file"

[network]
network_config_dir = "{networks}"
"""


@dataclass
class RuntimeState:
    """What `up` started, saved beside the lab's state so `down` stops exactly that."""

    registry: str = ""  # tailnet ip:port of the registry
    pids: dict[str, int] = field(default_factory=dict)  # "registry" or an edge name -> PID
    sockets: dict[str, str] = field(default_factory=dict)  # edge name -> Docker API socket


def _state_path(plan: Plan) -> Path:
    return Path(plan.dir) / "runtime.json"


def load(plan: Plan) -> RuntimeState | None:
    """load returns the runtime state of the lab, or None when `runtime up` never ran."""
    try:
        return RuntimeState(**json.loads(_state_path(plan).read_text()))
    except FileNotFoundError:
        return None


def _save(plan: Plan, state: RuntimeState) -> None:
    _state_path(plan).write_text(json.dumps(asdict(state), indent=2) + "\n")


def _dir(plan: Plan, host: str) -> Path:
    return Path(plan.dir) / host / "podman"


def socket_path(plan: Plan, host: str) -> str:
    """socket_path is the Docker API socket of host's podman service."""
    return str(_dir(plan, host) / "podman.sock")


def _env(plan: Plan, host: str) -> dict[str, str]:
    d = _dir(plan, host)
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(d),
        "CONTAINERS_CONF": str(d / "containers.conf"),
        "CONTAINERS_REGISTRIES_CONF": str(d / "registries.conf"),
    }


def podman(plan: Plan, host: str, *args: str) -> list[str]:
    """podman is the argv running `podman ARGS` as host's runtime (its netns, its storage)."""
    d = _dir(plan, host)
    netns = plan.host(host).netns
    return ["nsenter", f"--net=/run/netns/{netns}", "podman", "--root", str(d / "root"), "--runroot", str(d / "run"),
            *args]  # fmt: skip


def _configure(plan: Plan, host: str, registry: str) -> None:
    d = _dir(plan, host)
    (d / "networks").mkdir(parents=True, exist_ok=True)
    (d / "tmp").mkdir(parents=True, exist_ok=True)  # under /run: a tmpfs, as podman requires of tmp_dir
    (d / "containers.conf").write_text(CONTAINERS_CONF.format(networks=d / "networks", tmp=d / "tmp"))
    (d / "registries.conf").write_text(
        "unqualified-search-registries = []\n\n[[registry]]\n"
        f'prefix = "{REGISTRY_NAME}"\nlocation = "{registry}"\ninsecure = true\n'
    )


def _build_rootfs(target: Path, index: str) -> None:
    """_build_rootfs writes the web image's root filesystem tarball: busybox-static and its applets, /www."""
    if not Path(BUSYBOX).is_file():
        raise LabError(f"{BUSYBOX} missing: apt-get install busybox-static")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bin").mkdir()
        (root / "www").mkdir()
        (root / "tmp").mkdir()
        shutil.copy2(BUSYBOX, root / "bin" / "busybox")
        for applet in APPLETS:
            (root / "bin" / applet).symlink_to("busybox")
        (root / "www" / "index.html").write_text(index)
        with tarfile.open(target, "w") as tar:
            tar.add(root, arcname=".")


def _start(plan: Plan, host: str, argv: list[str], log: Path, env: dict[str, str]) -> int:
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)  # fmt: skip
    return process.pid


def _start_registry(plan: Plan, state: RuntimeState) -> None:
    control = plan.host(REGISTRY_HOST)
    lab = load_state(plan)
    assert lab is not None
    ip = lab.hosts[REGISTRY_HOST]["ip"]
    d = Path(plan.dir) / "registry"
    (d / "data").mkdir(parents=True, exist_ok=True)
    config = d / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: warn}\nstorage:\n  filesystem: {rootdirectory: " + str(d / "data") + "}\n"
        "  delete: {enabled: true}\nhttp:\n  addr: " + f"{ip}:{REGISTRY_PORT}\n"
    )
    argv = ["nsenter", f"--net=/run/netns/{control.netns}", "docker-registry", "serve", str(config)]
    state.pids["registry"] = _start(plan, REGISTRY_HOST, argv, d / "registry.log", {"PATH": "/usr/bin:/bin"})
    state.registry = f"{ip}:{REGISTRY_PORT}"

    def answers() -> bool:
        out = sy.run(["nsenter", f"--net=/run/netns/{control.netns}", "curl", "-s", "-o", "/dev/null", "-w",
                      "%{http_code}", f"http://{state.registry}/v2/"], check=False)  # fmt: skip
        return out.strip() == "200"

    sy.wait_for("the lab registry to answer", answers, timeout=START_TIMEOUT)


def _push_images(plan: Plan, state: RuntimeState) -> None:
    """_push_images builds the web image in the control host's own podman storage and pushes it to the registry."""
    host = REGISTRY_HOST
    _configure(plan, host, state.registry)
    env = _env(plan, host)
    change = "CMD " + json.dumps(WEB_CMD)
    for image, index in ((WEB_IMAGE, WEB_INDEX), (PULL_IMAGE, WEB_INDEX.replace("hello", "hello again"))):
        rootfs = Path(plan.dir) / "registry" / "rootfs.tar"
        _build_rootfs(rootfs, index)
        sy.run(podman(plan, host, "import", "--change", change, str(rootfs), image), env=env, timeout=120)
        # Pushed to the registry's address: the prefix mapping of registries.conf applies to pulls only.
        target = f"docker://{state.registry}/{image.removeprefix(REGISTRY_NAME + '/')}"
        sy.run(podman(plan, host, "push", "--tls-verify=false", image, target), env=env, timeout=120)


def _start_runtime(plan: Plan, state: RuntimeState, host: str) -> None:
    _configure(plan, host, state.registry)
    sock = socket_path(plan, host)
    Path(sock).unlink(missing_ok=True)
    argv = podman(plan, host, "system", "service", "--time=0", f"unix://{sock}")
    state.pids[host] = _start(plan, host, argv, _dir(plan, host) / "service.log", _env(plan, host))
    state.sockets[host] = sock

    def answers() -> bool:
        out = sy.run(["curl", "-s", "--unix-socket", sock, "http://d/v1.41/_ping"], check=False, timeout=5)
        return out.strip() == "OK"

    sy.wait_for(f"podman on {host} to answer", answers, timeout=START_TIMEOUT)


def pull(plan: Plan, host: str, image: str = WEB_IMAGE) -> None:
    """pull puts image into host's own storage from the lab registry (so a Project starts without a pull)."""
    sy.run(podman(plan, host, "pull", "--quiet", image), env=_env(plan, host), timeout=120)


def up(name: str, out: TextIO) -> RuntimeState:
    """up starts the registry, pushes the images, and starts a pre-pulled podman service in every edge."""
    plan = plan_of_running(name)
    state = load(plan) or RuntimeState()
    if not state.registry or not sy.alive(state.pids.get("registry", 0)):
        _start_registry(plan, state)
        _save(plan, state)
        _push_images(plan, state)
        print(f"registry on {REGISTRY_HOST} at {state.registry} holds {WEB_IMAGE}", file=out)
    for h in plan.hosts:
        if h.role != "node" or sy.alive(state.pids.get(h.name, 0)):
            continue
        _start_runtime(plan, state, h.name)
        _save(plan, state)
        pull(plan, h.name)
        print(f"podman on {h.name}: {state.sockets[h.name]} ({WEB_IMAGE} pulled)", file=out)
    return state


def stop_runtime(plan: Plan, host: str, *, wipe: bool) -> None:
    """stop_runtime stops host's podman service; with wipe also every container (what a reboot leaves behind:
    no container running, and, with a runroot on tmpfs, none known)."""
    state = load(plan)
    if state is None or host not in state.pids:
        raise LabError(f"no podman runtime on {host}; run `lab runtime up` first")
    sy.stop(state.pids[host])
    if wipe:
        sy.run(podman(plan, host, "rm", "--all", "--force", "--time", "0"), env=_env(plan, host), check=False,
               timeout=60)  # fmt: skip


def restart(name: str, host: str, out: TextIO, *, wipe: bool = False) -> None:
    """restart stops host's podman service (wiping its containers when asked) and starts it again."""
    plan = plan_of_running(name)
    stop_runtime(plan, host, wipe=wipe)
    state = load(plan)
    assert state is not None
    _start_runtime(plan, state, host)
    _save(plan, state)
    print(f"podman on {host} restarted{' with its containers wiped' if wipe else ''}", file=out)


def teardown(plan: Plan) -> None:
    """teardown removes every container and stops every runtime and the registry (`lab down` calls it first)."""
    state = load(plan)
    if state is None:
        return
    for host in state.sockets:
        sy.run(podman(plan, host, "rm", "--all", "--force", "--time", "0"), env=_env(plan, host), check=False,
               timeout=60)  # fmt: skip
        if state.pids.get(host):
            sy.stop(state.pids[host])
        sy.run(podman(plan, host, "system", "reset", "--force"), env=_env(plan, host), check=False, timeout=60)
    if REGISTRY_HOST in {h.name for h in plan.hosts} and (_dir(plan, REGISTRY_HOST) / "containers.conf").exists():
        sy.run(podman(plan, REGISTRY_HOST, "system", "reset", "--force"), env=_env(plan, REGISTRY_HOST),
               check=False, timeout=60)  # fmt: skip
    if state.pids.get("registry"):
        sy.stop(state.pids["registry"])
    for pid in _leftover_monitors(plan):  # a container `rm --all` missed must not outlive its namespace
        children = Path(f"/proc/{pid}/task/{pid}/children")
        kids = [int(k) for k in children.read_text().split()] if children.exists() else []
        for victim in (*kids, pid):
            sy.stop(victim, grace=1.0)
    _unmount_under(plan.dir)
    _state_path(plan).unlink(missing_ok=True)


def _unmount_under(directory: str) -> None:
    """_unmount_under unmounts what is still mounted below directory, deepest first: podman's overlay driver
    bind-mounts its `root/overlay` onto itself and `system reset` does not always undo it, which left the lab dir
    impossible to remove and the lab name unusable for the next `up`."""
    prefix = f"{directory}/"
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        sy.run(["umount", point], check=False)


def _leftover_monitors(plan: Plan) -> list[int]:
    """_leftover_monitors lists the conmon processes (one per container) still working for this lab's podman."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"conmon") and any(plan.dir.encode() + b"/" in a for a in argv):
            found.append(int(proc.name))
    return found


def describe(name: str) -> dict[str, Any]:
    """describe is the runtime state as JSON-able data (registry address, sockets, PIDs)."""
    plan = plan_of_running(name)
    state = load(plan)
    if state is None:
        raise LabError(f"lab '{name}' has no runtime; run `lab runtime up`")
    env = {h: _env(plan, h) for h in state.sockets}
    return {**asdict(state), "image": WEB_IMAGE, "pullImage": PULL_IMAGE, "env": env}
