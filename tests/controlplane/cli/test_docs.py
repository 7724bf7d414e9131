"""docs/caractrl.md shows what caractrl prints now: scripts/caractrl-docs reruns its examples, changing nothing."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _generator() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("caractrl_docs", str(ROOT / "scripts" / "caractrl-docs"))
    spec = importlib.util.spec_from_loader("caractrl_docs", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    loader.exec_module(module)
    return module


@pytest.mark.slow  # seconds of waiting: out of the --fast profile, still in CI
def test_the_page_is_what_the_commands_print_now() -> None:
    page = ROOT / "docs" / "caractrl.md"
    assert _generator().rendered(page) == page.read_text(encoding="utf-8"), (
        "docs/caractrl.md is stale: run scripts/caractrl-docs and review the diff"
    )


def test_a_stale_example_is_noticed(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```console\n$ caractrl get gadgets\nan old answer\n```\n")
    assert _generator().rendered(page) == (
        '```console\n$ caractrl get gadgets\nError: unknown resource type "gadgets" (expected nodes or projects)\n```\n'
    )
