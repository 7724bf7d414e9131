"""Tests of the mesh package: the LocalAPI client, its models, path classification and names."""
