"""A child process for the durability test: writes to a store and prints "ack NAME" after each write returns.

Usage: python _ack_writer.py STORE_URL. Eight tasks each create Nodes and bump a shared counter Node
forever, printing one line per acknowledged write, until the parent kills the process with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys

from controlplane.api import Node, ObjectMeta
from controlplane.store import Store, open_store


def bump(node: Node) -> Node:
    labels = dict(node.metadata.labels or {})
    labels["count"] = str(int(labels.get("count", "0")) + 1)
    node.metadata.labels = labels
    return node


async def writer(store: Store, task: int) -> None:
    for i in range(1_000_000):
        name = f"t{task}-{i:06}"
        await store.create_node(Node(metadata=ObjectMeta(name=name)))
        print(f"ack create {name}", flush=True)
        counted = await store.update_node("counter", bump)
        print(f"ack count {(counted.metadata.labels or {})['count']}", flush=True)


async def main(url: str) -> None:
    store = await open_store(url)
    await store.create_node(Node(metadata=ObjectMeta(name="counter")))
    print("ready", flush=True)
    await asyncio.gather(*(writer(store, task) for task in range(8)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
