"""The release artifacts of scripts/package installed as docs/deploy.md installs them: a venv of Debian's own Python
(3.11), then the wheel and its dependencies from the wheelhouse with --no-index. Lab tests of the deployment and the
agent's footprint benchmark run what this installs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lablib.units import ROOT

ARTIFACTS = ROOT / "artifacts"
#: Debian 12's own Python (3.11): what an operator installs with.
SYSTEM_PYTHON = "/usr/bin/python3"


class NoArtifacts(RuntimeError):
    """NoArtifacts: artifacts/ lacks the wheel or the wheelhouse (scripts/package makes them)."""


def release_wheel(folder: str) -> Path:
    """release_wheel is the newest wheel in artifacts/`folder` (dist: this version; previous: the previous release);
    raises NoArtifacts when it or the wheelhouse is missing."""
    wheels = sorted((ARTIFACTS / folder).glob("caravanserai_mesh-*.whl"))
    if not wheels or not (ARTIFACTS / "wheelhouse").is_dir():
        raise NoArtifacts(f"no release artifacts in {ARTIFACTS}/{folder}: run scripts/package first")
    return wheels[-1]


def install(prefix: Path, version: str) -> None:
    """install is docs/deploy.md's install step into `prefix`: a venv of the system Python (made once), then
    caravanserai-mesh==version and its dependencies from the wheelhouse (an upgrade is the same command on an
    existing venv). pip compiles every module to bytecode, as on an operator's machine."""
    if not (prefix / "bin" / "python").exists():
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(prefix)], check=True, timeout=120)
    pip = [str(prefix / "bin" / "pip"), "install", "-q", "--no-index", "--find-links", str(ARTIFACTS / "wheelhouse")]
    pip += ["-c", str(ARTIFACTS / "dist" / "constraints.txt"), f"caravanserai-mesh=={version}"]
    subprocess.run(pip, check=True, timeout=300, capture_output=True)
