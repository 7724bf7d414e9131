"""mesh's public face: `__all__` lists exactly the public names of the package, in ruff's isort order."""

from __future__ import annotations

import mesh


def _isort_key(name: str) -> tuple[int, str]:
    # ruff RUF022 order: SCREAMING_CASE constants, then CamelCase classes, then everything else.
    group = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return group, name


def test_all_public_members_are_exported() -> None:
    public = [name for name in vars(mesh) if not name.startswith("_")]
    assert mesh.__all__ == sorted(public, key=_isort_key)


def test_every_exported_class_and_function_is_documented() -> None:
    undocumented = [
        name
        for name in mesh.__all__
        if isinstance(getattr(mesh, name), type) or callable(getattr(mesh, name))
        if not (getattr(mesh, name).__doc__ or "").strip()
    ]
    assert undocumented == []
