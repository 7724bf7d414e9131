"""caractrl: the operator CLI of the Caravanserai control plane (one module per verb, `main.cli` is the root)."""
