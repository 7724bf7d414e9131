"""Tests of caractrl."""
