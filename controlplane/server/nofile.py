"""The open-file limit: cara-server holds one socket per agent (each keeps its connection alive), so at start it
raises its soft RLIMIT_NOFILE to the hard limit, as Go programs do since Go 1.19 (the soft limit is often 1,024)."""

from __future__ import annotations

import logging
import resource

log = logging.getLogger("cara.server")


def raise_nofile_limit() -> int:
    """raise_nofile_limit raises the soft limit on open files to the hard limit and returns the soft limit now in
    force. A limit that cannot be raised is logged and left as it was: the server still serves that many."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        log.debug("open files: %s (the hard limit)", _shown(soft))
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("open files: cannot raise the soft limit %s to %s (%s)", _shown(soft), _shown(hard), exc)
        return soft
    log.debug("open files: soft limit raised from %s to %s", _shown(soft), _shown(hard))
    return hard


def _shown(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else f"{limit:,}"
