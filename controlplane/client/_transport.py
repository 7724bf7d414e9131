"""The client's default httpx transport: certifi's CA bundle is loaded only for an https:// server."""

from __future__ import annotations

import ssl

import httpx


def tls_context(base_url: str) -> ssl.SSLContext:
    """tls_context is the SSL context the client verifies a server with: httpx's own (certifi's CA bundle) for
    https, and for plain http one that trusts no CA at all.

    Loading certifi's bundle into an SSL context takes about 70 ms, a quarter of `caractrl get`'s budget, and a
    plain http:// server never uses it. Such a client's context trusts nothing, so a stray TLS connection fails
    verification instead of going unverified.
    """
    if httpx.URL(base_url).scheme == "https":
        return httpx.create_ssl_context()
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def default_transport(base_url: str) -> httpx.AsyncBaseTransport:
    """default_transport is httpx's own transport, verifying with `tls_context(base_url)`."""
    return httpx.AsyncHTTPTransport(verify=tls_context(base_url))
