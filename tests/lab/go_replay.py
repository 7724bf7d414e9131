"""Replays the Go caractl's exact agent requests (shared/contract/go-wire-transcripts.md) from inside a lab host.

Run as `python go_replay.py HOST:PORT PROJECT SERVICE PORT CLOSED_PORT` in the operator's namespace; prints one JSON
document: each answer's head, and the first WebSocket frame of the forward.
"""

from __future__ import annotations

import json
import socket
import sys

GO = b"User-Agent: Go-http-client/1.1\r\n"
LOGS = b"GET /api/v1/logs/{p}/{s}{q} HTTP/1.1\r\nHost: {host}\r\n" + GO + b"Accept-Encoding: gzip\r\n\r\n"
FORWARD = (
    b"GET /api/v1/forward/{p}/{s}/{port} HTTP/1.1\r\nHost: {host}\r\n" + GO + b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n\r\n"
)


def ask(address: str, raw: bytes) -> tuple[socket.socket, str]:
    host, port = address.rsplit(":", 1)
    conn = socket.create_connection((host, int(port)), timeout=5)
    conn.sendall(raw.replace(b"{host}", address.encode()))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return conn, (head + b"\r\n\r\n" + body).decode("utf-8", "replace")


def frames(stream: bytes) -> tuple[list[str], bytes]:
    """frames splits server frames (unmasked): their first bytes in hex, and the data messages' payload joined."""
    opcodes, payload = [], b""
    while len(stream) >= 2:
        size, at = stream[1] & 0x7F, 2
        if size == 126:
            size, at = int.from_bytes(stream[2:4], "big"), 4
        elif size == 127:
            size, at = int.from_bytes(stream[2:10], "big"), 10
        opcodes.append(hex(stream[0]))
        if stream[0] & 0x0F in (0x0, 0x1, 0x2):
            payload += stream[at : at + size]
        stream = stream[at + size :]
    return opcodes, payload


def fill(template: bytes, **values: str) -> bytes:
    for key, value in values.items():
        template = template.replace(b"{" + key.encode() + b"}", value.encode())
    return template


def main(address: str, project: str, service: str, port: str, closed: str) -> None:
    out: dict[str, str] = {}
    _, out["logs"] = ask(address, fill(LOGS, p=project, s=service, q="?follow=true&tail=5&timestamps=true"))
    _, out["logsMissing"] = ask(address, fill(LOGS, p=project, s="nope", q=""))
    conn, out["forward"] = ask(address, fill(FORWARD, p=project, s=service, port=port))
    payload, mask = b"GET / HTTP/1.0\r\n\r\n", b"abcd"
    conn.sendall(bytes([0x82, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    stream = b""
    while chunk := conn.recv(65536):  # the agent closes once the container's side has closed
        stream += chunk
    opcodes, payload = frames(stream)
    out["opcodes"] = " ".join(opcodes)
    out["payload"] = payload.decode("utf-8", "replace")
    _, out["forwardClosed"] = ask(address, fill(FORWARD, p=project, s=service, port=closed))
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:6])
