"""Caravanserai control plane: API types, store, server, controllers, client and caractrl."""
