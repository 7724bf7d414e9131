"""cara-server raises its soft open-file limit to the hard limit at start; a limit it cannot raise is a warning."""

from __future__ import annotations

import logging
import resource
from collections.abc import Iterator

import pytest

from controlplane.server.nofile import raise_nofile_limit


@pytest.fixture
def limits() -> Iterator[tuple[int, int]]:
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield before
    resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_the_soft_limit_is_raised_to_the_hard_limit(limits: tuple[int, int], caplog: pytest.LogCaptureFixture) -> None:
    _, hard = limits
    low = min(256, hard - 1)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    with caplog.at_level(logging.DEBUG, "cara.server"):
        assert raise_nofile_limit() == hard
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    assert f"raised from {low:,}" in caplog.text


def test_a_limit_that_cannot_be_raised_is_a_warning_and_stays(
    limits: tuple[int, int], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, hard = limits
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    def refuse(which: int, value: tuple[int, int]) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(resource, "setrlimit", refuse)
    assert raise_nofile_limit() == 256
    assert "cannot raise the soft limit 256" in caplog.text and caplog.records[-1].levelname == "WARNING"
