"""Standard-library-only internals of the `headscale-dev/lab` command (plan, system calls, lifecycle)."""
