"""Projects on this Node: naming rules, the container specs they become, and the reconcile loop."""
