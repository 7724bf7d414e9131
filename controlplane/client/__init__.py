"""Typed async HTTP client of the caravanserai/v1 control-plane API, raising problem documents as exceptions.

Exception tree::

    ClientError
     ├── ServerUnreachable      connect failure or timeout; names the URL
     ├── InvalidResponse        the server answered with something that is not the contract
     └── ApiError(status, title, detail, errors)   any problem document (RFC 9457)
          ├── ValidationProblem  400; `.errors` holds one `field: what is wrong` string per field
          ├── Unauthorized       401
          ├── Forbidden          403
          ├── NotFound           404
          ├── Conflict           409
          └── ServerError        5xx

Every method is "path + expected status + decode" over the one private `_send`; status codes are
mapped to exception types in `raise_for_problem` and httpx's errors in `map_transport_errors`, nowhere else.

Modules: `_exceptions` (the tree above and those two mappings), `_client` (Client), `_wire` (the shape check of
undecoded reads), `_witness` (the Cara-Witness header), `_transport` (the default httpx transport).
"""

from ._client import DEFAULT_TIMEOUT, Client
from ._exceptions import (
    ApiError,
    ClientError,
    Conflict,
    Forbidden,
    InvalidResponse,
    NotFound,
    ServerError,
    ServerUnreachable,
    Unauthorized,
    ValidationProblem,
)
from ._wire import Resource
from ._witness import WITNESS_NAMES_MAX, witness_names

__all__ = [
    "DEFAULT_TIMEOUT",
    "WITNESS_NAMES_MAX",
    "ApiError",
    "Client",
    "ClientError",
    "Conflict",
    "Forbidden",
    "InvalidResponse",
    "NotFound",
    "Resource",
    "ServerError",
    "ServerUnreachable",
    "Unauthorized",
    "ValidationProblem",
    "witness_names",
]
