"""``python -m ros_nodes {policy,recorder,sim} [--ros-args ...]``: run a node without the console scripts."""

from __future__ import annotations

import sys

from ros_nodes.entrypoints import NODES

if len(sys.argv) < 2 or sys.argv[1] not in NODES:
    sys.exit(f"usage: python -m ros_nodes {{{','.join(NODES)}}} [--ros-args ...]")
NODES[sys.argv.pop(1)]()
