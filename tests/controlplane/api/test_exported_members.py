"""The public face of controlplane.api is exactly its sorted __all__ (style rule 1)."""

import controlplane.api as api


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in dir(api) if not name.startswith("_")}
    # isort-style order: CONSTANTS, then Classes, then functions (as ruff's RUF022 keeps it)
    assert api.__all__ == sorted(api.__all__, key=lambda name: (not name.isupper(), not name[0].isupper(), name))
    assert public - {"annotations"} == set(api.__all__)
