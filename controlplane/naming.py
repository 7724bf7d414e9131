"""The string rules of caravanserai/v1 that need no models: object names, label and annotation keys, label values.

A leaf module, like `defaults`: it imports nothing of ours and nothing heavy, so caractrl checks a NAME or a `-l`
selector without loading pydantic. `controlplane.api` builds its models and write rules on it and re-exports it.
"""

from __future__ import annotations

import re
from typing import Final

#: A DNS-subdomain-like name, as the existing Go project validates it.
NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
NAME_MAX_LENGTH = 253
NAME_RULE = (
    "must be 1-253 characters of lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
)


DNS1123_LABEL_MAX: Final = 63
DNS1123_SUBDOMAIN_MAX: Final = 253
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
SUBDOMAIN_RULE: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', each "
    "'.'-separated part starting and ending with an alphanumeric character and at most 63 characters, "
    "253 characters in all (e.g. 'example.com')"
)
LABEL_RULE: Final = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', start and end with an "
    "alphanumeric character, and be at most 63 characters (e.g. 'my-name')"
)
QUALIFIED_NAME_RULE: Final = (
    "a qualified name must be an optional DNS subdomain prefix and '/', then a name of at most 63 alphanumeric "
    "characters, '-', '_' or '.', starting and ending with an alphanumeric character (e.g. 'app' or "
    "'example.com/tier')"
)
LABEL_VALUE_RULE: Final = (
    "a valid label value must be empty or at most 63 alphanumeric characters, '-', '_' or '.', starting and ending "
    "with an alphanumeric character (e.g. 'web')"
)


def validate_name(value: str) -> str:
    """validate_name returns value if it is a valid object name; raises ValueError naming the rule."""
    if len(value) > NAME_MAX_LENGTH or not NAME_PATTERN.fullmatch(value):
        raise ValueError(NAME_RULE)
    return value


def subdomain_problem(value: str) -> str | None:
    """subdomain_problem checks a DNS-1123 subdomain whose every label is at most 63 characters."""
    if not value or len(value) > DNS1123_SUBDOMAIN_MAX:
        return SUBDOMAIN_RULE
    parts = value.split(".")
    if any(len(part) > DNS1123_LABEL_MAX or not _DNS1123_LABEL.fullmatch(part) for part in parts):
        return SUBDOMAIN_RULE
    return None


def label_problem(value: str) -> str | None:
    """label_problem checks a DNS-1123 label (a service, volume or ingress name)."""
    if len(value) > DNS1123_LABEL_MAX or not _DNS1123_LABEL.fullmatch(value):
        return LABEL_RULE
    return None


def qualified_name_problem(key: str) -> str | None:
    """qualified_name_problem checks a label or annotation key: `[prefix/]name`."""
    prefix, slash, name = key.rpartition("/")
    if slash and subdomain_problem(prefix) is not None:
        return f"prefix part: {SUBDOMAIN_RULE}"
    if not name or len(name) > DNS1123_LABEL_MAX or not _QUALIFIED_NAME.fullmatch(name):
        return QUALIFIED_NAME_RULE
    return None


def label_value_problem(value: str) -> str | None:
    """label_value_problem checks a label value."""
    if len(value) > DNS1123_LABEL_MAX or not _LABEL_VALUE.fullmatch(value):
        return LABEL_VALUE_RULE
    return None
