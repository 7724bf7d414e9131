"""The public face of controlplane.client is exactly its sorted __all__ (style rule 1), as for mesh and the api."""

import controlplane.client as client


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in dir(client) if not name.startswith("_")}
    # isort-style order: CONSTANTS, then Classes, then functions (as ruff's RUF022 keeps it)
    assert client.__all__ == sorted(client.__all__, key=lambda name: (not name.isupper(), not name[0].isupper(), name))
    assert public - {"annotations"} == set(client.__all__)
