"""The client's default httpx transport: certifi's CA bundle is loaded only for an https:// server."""

from __future__ import annotations

import ssl

import httpx


def default_transport(base_url: str) -> httpx.AsyncBaseTransport:
    """default_transport is httpx's own, with the CA bundle loaded only for https.

    Loading certifi's bundle into an SSL context takes about 70 ms, a quarter of `caractrl get`'s budget, and a
    plain http:// server never uses it. Such a client gets a context that trusts no CA at all, so a stray TLS
    connection fails verification instead of going unverified.
    """
    if httpx.URL(base_url).scheme == "https":
        return httpx.AsyncHTTPTransport()
    return httpx.AsyncHTTPTransport(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
