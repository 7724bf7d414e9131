"""FakeEngine: an in-memory Docker Engine API (the endpoints RuntimeClient uses) behind httpx.MockTransport.

Its answers have the shapes of the recorded ones in runtime_fixtures/ (dockerd 20.10); failures are injected by
name. It exists so that reconcile tests can run many passes; the client itself is tested against the recordings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx


@dataclass
class FakeEngine:
    images: set[str] = field(default_factory=set)
    # images a pull succeeds for (added to `images` when pulled); every other pull fails as dockerd's does.
    pullable: set[str] = field(default_factory=set)
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_start: set[str] = field(default_factory=set)
    down: bool = False
    # address: the IP every started container gets on its network (a test points it at a loopback server).
    address: str = "10.89.0.2"
    # logs: container name → (stream, line) frames its log holds (1 stdout, 2 stderr).
    logs: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def exit(self, name: str, code: int, finished_at: str = "2026-11-30T10:00:00.123456789Z") -> None:
        state = self.containers[name]["State"]
        state.update(Status="exited", Running=False, ExitCode=code, FinishedAt=finished_at)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        path = unquote(request.url.path).removeprefix("/v1.41")
        method = request.method
        query = request.url.query.decode()
        self.calls.append(f"{method} {path}" + (f"?{query}" if query else ""))
        params = request.url.params
        body = json.loads(request.content) if request.content else {}
        if path == "/_ping":
            return httpx.Response(200, text="OK")
        if path == "/version":
            return httpx.Response(200, json={"Version": "20.10.24+dfsg1", "ApiVersion": "1.41"})
        if path.startswith("/images/") and path.endswith("/json"):
            image = path.removeprefix("/images/").removesuffix("/json")
            return self._ok({"Id": "sha256:1"}) if image in self.images else self._missing(f"No such image: {image}")
        if path == "/images/create":
            image = f"{params['fromImage']}:{params['tag']}"
            if image not in self.pullable:
                return httpx.Response(500, json={"message": f"pull access denied for {params['fromImage']}"})
            self.images.add(image)
            return httpx.Response(200, content=b'{"status":"Pulling"}\n{"status":"Downloaded newer image"}\n')
        if path == "/networks/create":
            if body["Name"] in self.networks:
                return httpx.Response(409, json={"message": f"network with name {body['Name']} already exists"})
            self.networks[body["Name"]] = {"Id": "n" + body["Name"], "Name": body["Name"], "Labels": body["Labels"]}
            return httpx.Response(201, json={"Id": "n1", "Warning": ""})
        if path.startswith("/networks/"):
            name = path.removeprefix("/networks/")
            if name not in self.networks:
                return self._missing(f"network {name} not found")
            if method == "DELETE":
                del self.networks[name]
                return httpx.Response(204)
            return self._ok(self.networks[name])
        if path == "/volumes" and method == "GET":
            wanted = json.loads(params["filters"])["label"]
            names = [v for v, doc in self.volumes.items() if _labelled(doc["Labels"], wanted)]
            return self._ok({"Volumes": [{"Name": n, "Labels": self.volumes[n]["Labels"]} for n in names] or None})
        if path == "/volumes/create":
            self.volumes.setdefault(body["Name"], {"Labels": body["Labels"]})
            return httpx.Response(201, json={"Name": body["Name"]})
        if path.startswith("/volumes/"):
            self.volumes.pop(path.removeprefix("/volumes/"), None)
            return httpx.Response(204)
        if path == "/containers/create":
            return self._create(params["name"], body)
        if path == "/containers/json":
            wanted = json.loads(params["filters"])["label"]
            found = [
                {"Id": c["Id"], "Names": ["/" + n], "Labels": c["Config"]["Labels"], "State": c["State"]["Status"]}
                for n, c in self.containers.items()
                if _labelled(c["Config"]["Labels"], wanted)
            ]
            return self._ok(found)
        if path.startswith("/containers/"):
            return self._container(method, path.removeprefix("/containers/"))
        return httpx.Response(404, json={"message": "page not found"})

    def _create(self, name: str, body: dict[str, Any]) -> httpx.Response:
        if name in self.containers:
            return httpx.Response(409, json={"message": f'Conflict. The container name "/{name}" is already in use'})
        if body["Image"] not in self.images:
            return self._missing(f"No such image: {body['Image']}")
        network = body["HostConfig"]["NetworkMode"]
        if network not in self.networks:
            return self._missing(f"network {network} not found")
        self.containers[name] = {
            "Id": "id-" + name,
            "Name": "/" + name,
            "State": {"Status": "created", "Running": False, "ExitCode": 0, "FinishedAt": "0001-01-01T00:00:00Z"},
            "Config": {"Image": body["Image"], "Labels": body["Labels"], "Env": body["Env"], "Tty": False},
            "HostConfig": body["HostConfig"],
            "NetworkSettings": {
                "Networks": {
                    network: {
                        "IPAddress": "",
                        "Aliases": body["NetworkingConfig"]["EndpointsConfig"][network]["Aliases"],
                    }
                }
            },
        }
        return httpx.Response(201, json={"Id": "id-" + name, "Warnings": []})

    def _container(self, method: str, rest: str) -> httpx.Response:
        ident, _, action = rest.partition("/")
        name = next((n for n, c in self.containers.items() if ident in (n, c["Id"])), None)
        if name is None:
            return self._missing(f"No such container: {ident}")
        container = self.containers[name]
        if method == "DELETE":
            del self.containers[name]
            return httpx.Response(204)
        if action == "json":
            return self._ok(container)
        if action == "start":
            if name in self.fail_start:
                return httpx.Response(500, json={"message": "runc create failed: starting container process"})
            container["State"].update(Status="running", Running=True)
            for network in container["NetworkSettings"]["Networks"].values():
                network["IPAddress"] = self.address
            return httpx.Response(204)
        if action == "logs":
            frames = self.logs.get(name, [])
            body = b"".join(bytes([stream, 0, 0, 0]) + len(line).to_bytes(4, "big") + line for stream, line in frames)
            return httpx.Response(200, headers={"content-type": "application/octet-stream"}, content=body)
        if action == "stop":
            container["State"].update(Status="exited", Running=False, ExitCode=137)
            return httpx.Response(204)
        return httpx.Response(404, json={"message": "page not found"})

    @staticmethod
    def _ok(doc: Any) -> httpx.Response:
        return httpx.Response(200, json=doc)

    @staticmethod
    def _missing(message: str) -> httpx.Response:
        return httpx.Response(404, json={"message": message})


def _labelled(labels: dict[str, str] | None, wanted: list[str]) -> bool:
    have = {f"{key}={value}" for key, value in (labels or {}).items()} | set(labels or {})
    return set(wanted) <= have
