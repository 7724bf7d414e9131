"""Tests of the fleet page: its routes in-process, and the page itself in a real headless Chromium."""
