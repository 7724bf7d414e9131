"""Standard-library-only internals of the `headscale-dev/lab` command (plan, system calls, lifecycle), its client
for tests and benchmarks (client), and the harness that runs Caravanserai's binaries in a lab (harness, units)."""
