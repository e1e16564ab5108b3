"""Run nodes in this process on a ROS context of their own (tests, benchmarks, notebooks).

    with RosHarness(domain_id=42) as ros:
        node = ros.add(PolicyNode(context=ros.context, parameter_overrides=[...]))
        probe = ros.add(ros.make_node("probe"))
        ros.wait_for(lambda: received, timeout=10)

The context is initialised with ``domain_id`` so parallel runs don't cross-talk, and one background thread spins every
added node with a single-threaded executor (see :func:`ros_nodes.ros_io.make_executor` for why not rclpy's
MultiThreadedExecutor). :meth:`RosHarness.close` stops that thread, destroys the nodes (which stop and join their own
threads) and shuts the context down, so nothing of a harness keeps running after it. Requires a process started with
the ROS environment.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

import rclpy
from rclpy.context import Context
from rclpy.node import Node

from ros_nodes.ros_io import make_executor

SPIN_POLL_S = 0.1
"""The spin thread checks for :meth:`RosHarness.close` at least this often."""


class RosHarness:
    """One ROS context, its nodes and the thread that spins them.

    Args:
        domain_id: ROS_DOMAIN_ID of the context.
        args: ROS command-line arguments (e.g. ``["--ros-args", "--params-file", path]``).
    """

    def __init__(self, domain_id: int | None = None, args: list[str] | None = None):
        self.context = Context()
        rclpy.init(args=args, context=self.context, domain_id=domain_id)
        self.executor = make_executor(context=self.context)
        self.nodes: list[Node] = []
        self._clients: dict = {}
        self.errors: list[Exception] = []
        """Exceptions raised by callbacks (spinning stops at the first)."""
        self._closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="ros-harness-spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            while not self._stop.is_set() and self.context.ok():
                self.executor.spin_once(timeout_sec=SPIN_POLL_S)
        except Exception as err:  # a callback raised: keep it visible, the test will time out on it
            if not self._stop.is_set() and self.context.ok():
                self.errors.append(err)
                traceback.print_exc()

    def make_node(self, name: str, **kwargs) -> Node:
        return Node(name, context=self.context, **kwargs)

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def call(self, node: Node, srv_type, name: str, request, timeout: float = 10.0):
        """Call a service from ``node`` and wait for the response (raises TimeoutError).

        One client per (node, service) is kept: a fresh client's response reader may not be discovered by the server
        yet when its first request goes out (the response is then lost), so a new client waits a moment once.
        """
        key = (node.get_name(), name)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = node.create_client(srv_type, name)
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {name} not available")
            time.sleep(0.5)
        future = client.call_async(request)
        if not self.wait_for(future.done, timeout):
            raise TimeoutError(f"no response from {name} within {timeout} s")
        return future.result()

    @staticmethod
    def wait_for(predicate: Callable[[], bool], timeout: float, poll: float = 0.02) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(poll)
        return bool(predicate())

    @property
    def spinning(self) -> bool:
        """Whether the spin thread is still alive (False after :meth:`close`)."""
        return self._thread.is_alive()

    def close(self) -> None:
        """Stop spinning (joins the spin thread), destroy every node and client, shut the context down.

        Nodes are destroyed while the context is still valid, so their own threads (the sim's stepping thread, the
        policy's inference worker) stop and join without publishing into a dead context. Safe to call twice.
        """
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self.executor.wake()
        self._thread.join(timeout=10.0)
        if self._thread.is_alive():  # a callback is stuck: say so rather than leave a silent spinning thread
            print(f"RosHarness: the spin thread did not stop within 10 s; nodes: {[n.get_name() for n in self.nodes]}")
        self._clients.clear()  # destroyed with their nodes
        for node in reversed(self.nodes):
            self.executor.remove_node(node)
            node.destroy_node()
        self.nodes.clear()
        self.executor.shutdown(timeout_sec=2.0)
        rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> RosHarness:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
