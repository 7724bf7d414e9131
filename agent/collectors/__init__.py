"""Collectors: small readers that turn the machine and the tailnet into caravanserai/v1 status fields."""
