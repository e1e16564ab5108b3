"""The policy node's inference thread: computes one action chunk at a time from observation snapshots, off the
control thread. No rclpy.

Every request carries the episode generation it was made in; at most one request per generation is outstanding, a
request still waiting when a newer one comes is replaced, and the chunk goes to ``on_chunk`` together with its
generation, so the caller can discard chunks of an episode that has ended. Adapter switches (``before_chunk``) run
here too, between two chunks.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import numpy as np


class InferenceWorker:
    """One thread calling ``policy.predict_action_chunk(obs, task)``.

    Args:
        policy: anything with ``predict_action_chunk(obs, task) -> (T, D)``.
        on_chunk: ``on_chunk(generation, tick, chunk, t_request)`` when a chunk is ready.
        on_error: ``on_error(generation, err)`` when inference raised (the thread keeps running).
        before_chunk: called on this thread before each chunk (e.g. a pending adapter switch).
    """

    def __init__(
        self,
        policy,
        on_chunk: Callable[[int, int, np.ndarray, float], None],
        on_error: Callable[[int, Exception], None],
        before_chunk: Callable[[], None] | None = None,
    ):
        self.policy = policy
        self.on_chunk, self.on_error, self.before_chunk = on_chunk, on_error, before_chunk
        self._requests: queue.Queue = queue.Queue(maxsize=1)
        self._lock = threading.Lock()
        self._outstanding: int | None = None  # generation being computed or waiting
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="robosteer-inference", daemon=True)
        self._thread.start()

    def busy_with(self, generation: int) -> bool:
        """Whether a chunk for ``generation`` is already being computed or waiting."""
        with self._lock:
            return self._outstanding == generation

    def submit(self, generation: int, tick: int, obs: dict, task: str) -> None:
        """Compute a chunk from ``obs`` for control tick ``tick``; replaces a request that has not started yet."""
        with self._lock:
            self._outstanding = generation
            self._drop_waiting()
            self._requests.put_nowait((generation, tick, obs, task, time.monotonic()))

    def drop_waiting(self) -> None:
        """Forget a request that has not started (its episode ended)."""
        with self._lock:
            self._drop_waiting()

    def _drop_waiting(self) -> None:
        try:
            self._requests.get_nowait()
        except queue.Empty:
            pass

    def _finished(self, generation: int) -> None:
        with self._lock:
            if self._outstanding == generation:
                self._outstanding = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                generation, tick, obs, task, t_request = self._requests.get(timeout=0.2)
            except queue.Empty:
                continue
            if self.before_chunk is not None:
                self.before_chunk()
            try:
                chunk = self.policy.predict_action_chunk(obs, task)  # (T, D)
            except Exception as err:  # keep the thread alive; the control step holds position meanwhile
                self._finished(generation)
                self.on_error(generation, err)
                continue
            try:
                self.on_chunk(generation, tick, chunk, t_request)  # queued before a new request can be made
            finally:
                self._finished(generation)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop and join the thread (it may be inside a chunk); False when it did not stop in time."""
        self._stop.set()
        self._thread.join(timeout=timeout)
        return not self._thread.is_alive()
