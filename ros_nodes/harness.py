"""Run nodes in this process on a ROS context of their own (tests, benchmarks, notebooks).

    with RosHarness(domain_id=42) as ros:
        node = ros.add(PolicyNode(context=ros.context, parameter_overrides=[...]))
        probe = ros.add(ros.make_node("probe"))
        ros.wait_for(lambda: received, timeout=10)

The context is initialised with ``domain_id`` so parallel runs don't cross-talk, and a multi-threaded executor spins
every added node in a background thread. Requires a process started with the ROS environment.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node


class RosHarness:
    def __init__(self, domain_id: int | None = None, args: list[str] | None = None, threads: int = 4):
        self.context = Context()
        rclpy.init(args=args, context=self.context, domain_id=domain_id)
        self.executor = MultiThreadedExecutor(num_threads=threads, context=self.context)
        self.nodes: list[Node] = []
        self._clients: dict = {}
        self.errors: list[Exception] = []
        """Exceptions raised by callbacks (spinning stops at the first)."""
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception as err:  # a callback raised: keep it visible, the test will time out on it
            if self.context.ok():
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

    def close(self) -> None:
        for client in self._clients.values():
            client.destroy()
        self.executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=5.0)
        for node in self.nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> RosHarness:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
