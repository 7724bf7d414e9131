"""Problem documents (RFC 9457) and plain answers written straight onto an agent API connection."""

from __future__ import annotations

import asyncio
import json
from typing import Final

TITLES: Final = {
    400: "Validation Problem",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def head(status: int, headers: dict[str, str]) -> bytes:
    """head is a response's status line and headers."""
    lines = [f"HTTP/1.1 {status} {TITLES.get(status, 'OK' if status < 300 else 'Error')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def send_problem(writer: asyncio.StreamWriter, status: int, detail: str, errors: list[str] | None = None) -> None:
    """send_problem writes a complete problem+json answer and leaves closing the connection to the caller."""
    doc: dict[str, object] = {"title": TITLES[status], "status": status, "type": "about:blank", "detail": detail}
    if errors:
        doc["errors"] = errors
    body = json.dumps(doc).encode() + b"\n"
    headers = {
        "Content-Type": "application/problem+json",
        "Content-Length": str(len(body)),
        "Connection": "close",
    }
    writer.write(head(status, headers) + body)
    await writer.drain()
