"""cara-agent: the node agent that registers its machine and reports its resources, tailnet paths and throughput."""
