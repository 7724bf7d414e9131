"""Kubernetes-style quantity strings: parsing to numbers and formatting cpu, memory, disk and throughput."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}
_QUANTITY = re.compile(r"^([+]?[0-9]+(?:\.[0-9]*)?|[+]?\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][0-9]+)?$")
_THROUGHPUT = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(bps|Kbps|Mbps|Gbps)$")
_THROUGHPUT_UNITS = {"bps": 1, "Kbps": 10**3, "Mbps": 10**6, "Gbps": 10**9}

QUANTITY_RULE = "must be a quantity such as '500m', '2', '512Mi' or '10Gi'"


def parse_quantity(text: str) -> Decimal:
    """parse_quantity returns the value of a Kubernetes quantity; raises ValueError on bad syntax."""
    match = _QUANTITY.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(QUANTITY_RULE)
    number, suffix = match.group(1), match.group(2) or ""
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValueError(QUANTITY_RULE) from None
    if suffix in _BINARY:
        return value * _BINARY[suffix]
    if suffix[:1] in ("e", "E"):
        return value * (Decimal(10) ** int(suffix[1:]))
    return value * _DECIMAL[suffix]


def cpu_millis(text: str) -> int:
    """cpu_millis returns a cpu quantity in millicores ("4000m" and "4" are both 4000)."""
    return int(parse_quantity(text) * 1000)


def quantity_bytes(text: str) -> int:
    """quantity_bytes returns a memory or disk quantity in bytes ("1Ki" is 1024)."""
    return int(parse_quantity(text))


def format_cpu(millis: int) -> str:
    """format_cpu renders millicores the way agents report them: "4000m"."""
    return f"{int(millis)}m"


def format_mebibytes(n_bytes: int) -> str:
    """format_mebibytes renders bytes as whole mebibytes: "7823Mi"."""
    return f"{int(n_bytes) // 2**20}Mi"


def format_gibibytes(n_bytes: int) -> str:
    """format_gibibytes renders bytes as whole gibibytes: "118Gi"."""
    return f"{int(n_bytes) // 2**30}Gi"


def format_throughput(bits_per_second: float) -> str:
    """format_throughput renders bits per second as megabits with one decimal: "94.1Mbps"."""
    return f"{bits_per_second / 1e6:.1f}Mbps"


def parse_throughput(text: str) -> float:
    """parse_throughput returns bits per second of "94.1Mbps"-style text; raises ValueError otherwise."""
    match = _THROUGHPUT.fullmatch(text.strip())
    if match is None:
        raise ValueError("must be a rate such as '94.1Mbps'")
    return float(match.group(1)) * _THROUGHPUT_UNITS[match.group(2)]


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """parse_duration returns seconds of a Go-style duration ("10s", "1m30s", "500ms") or a plain number."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        if not _DURATION.fullmatch(text):
            raise ValueError(f"{text!r} is not a duration such as '10s', '1m' or '1h30m'") from None
        seconds = sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))
    if seconds <= 0:
        raise ValueError(f"{text!r} must be a positive duration")
    return seconds
