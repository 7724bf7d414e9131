"""scripts/previous-release (what scripts/package builds the upgrade test's wheel from) in clones like CI's: without
tags it falls back on the release's commit; without that commit either it stops naming the release."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "previous-release"


def _clone(tmp_path: Path, *options: str) -> Path:
    dest = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-tags", *options, f"file://{ROOT}", str(dest)], check=True)
    shutil.copy2(SCRIPT, dest / "scripts" / "previous-release")  # this working copy's script, not the committed one
    return dest


def _run(clone: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(clone / "scripts" / "previous-release")], capture_output=True, text=True, check=False)


def test_a_clone_without_tags_finds_the_release_by_its_commit(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    assert subprocess.run(["git", "-C", str(clone), "tag", "-l"], capture_output=True, text=True).stdout == ""
    found = _run(clone)
    assert found.returncode == 0, found.stderr
    commit = found.stdout.strip()
    assert len(commit) == 40
    version = subprocess.run(
        ["git", "-C", str(clone), "show", f"{commit}:pyproject.toml"], capture_output=True, text=True, check=True
    ).stdout
    assert 'version = "0.1.0"' in version


def test_with_the_tag_the_tag_is_used(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    commit = _run(clone).stdout.strip()
    subprocess.run(["git", "-C", str(clone), "tag", "v0.1.0", commit], check=True)
    assert _run(clone).stdout == "v0.1.0\n"


def test_a_shallow_clone_without_the_release_stops_naming_it(tmp_path: Path) -> None:
    found = _run(_clone(tmp_path, "--depth", "1"))
    assert found.returncode == 1 and found.stdout == ""
    assert found.stderr.startswith("scripts/previous-release: the previous release v0.1.0 (commit efaa39f75f8a)")
