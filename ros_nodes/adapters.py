"""Adapters at run time in the policy node: one base policy, several steer/LoRA adapters
(:class:`robosteer.tuners.switch.AdapterBank`), one chosen per instruction or by the ``adapter`` parameter.

The ``adapters`` parameter names a YAML file::

    adapters:                 # name -> adapter folder (relative to this file, or absolute)
      pick: runs/pick/adapter
      push: runs/push/adapter
    instructions:             # instruction -> adapter name ('' = the base policy)
      pick up the red cube: pick
      push the cube to the target: push
    default: ""               # adapter for any other instruction

``ros2 param set /robosteer_policy adapter push`` switches at once (served by the node's own set_parameters service;
an unknown name is refused with the known ones). A switch starts a new episode; the weights are swapped on the
inference thread between two chunks, so the control loop never waits for it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import yaml

from robosteer.errors import RobosteerError

_NOTHING = object()


class AdapterSwitch:
    """The instruction map plus a pending switch that the inference thread applies before its next chunk."""

    def __init__(self, bank, by_instruction: dict[str, str], default: str = ""):
        unknown = sorted({*by_instruction.values(), default} - {"", *bank.names})
        if unknown:
            raise RobosteerError(f"adapters YAML names unknown adapters {unknown}; known: {', '.join(bank.names)}")
        self.bank = bank
        self.by_instruction = dict(by_instruction)
        self.default = default
        self._lock = threading.Lock()
        self._pending = _NOTHING
        self._requested_at = 0.0
        self.switches = 0
        self.switch_ms: list[float] = []
        """Milliseconds each weight swap took (recent ones)."""
        self.wait_ms: list[float] = []
        """Milliseconds from each request to its swap (waiting for the chunk being computed), recent ones."""

    @classmethod
    def from_yaml(cls, policy, path: str, log=print) -> AdapterSwitch:
        from robosteer.tuners.switch import AdapterBank

        file = Path(path).expanduser()
        if not file.is_file():
            raise RobosteerError(f"adapters file {file} does not exist; give a YAML map (see ros_nodes/adapters.py)")
        data = yaml.safe_load(file.read_text()) or {}
        folders = data.get("adapters") or {}
        if not isinstance(folders, dict) or not folders:
            raise RobosteerError(f"{file} has no 'adapters:' map of name -> adapter folder")
        paths = {str(name): (file.parent / str(folder)).resolve() for name, folder in folders.items()}
        start = time.perf_counter()
        bank = AdapterBank(policy, paths)
        log(f"adapters {', '.join(paths)} loaded onto the base in {time.perf_counter() - start:.1f} s")
        instructions = {str(k): str(v or "") for k, v in (data.get("instructions") or {}).items()}
        return cls(bank, instructions, str(data.get("default") or ""))

    def check(self, name: str) -> None:
        if name and name not in self.bank.names:
            raise RobosteerError(f"unknown adapter {name!r}; known: {', '.join(self.bank.names)} ('' = the base)")

    def request(self, name: str) -> None:
        """Switch to ``name`` ('' = base) before the next chunk."""
        self.check(name)
        with self._lock:
            self._pending, self._requested_at = name, time.monotonic()

    def request_for_task(self, instruction: str) -> None:
        self.request(self.by_instruction.get(instruction, self.default))

    def apply_pending(self) -> None:
        """Inference thread only: perform a requested switch."""
        with self._lock:
            pending, self._pending, requested_at = self._pending, _NOTHING, self._requested_at
        if pending is _NOTHING or (pending or None) == self.bank.active:
            return
        self.bank.activate(pending)
        self.switches += 1
        self.switch_ms = [*self.switch_ms[-99:], 1000.0 * self.bank.last_switch_s]
        self.wait_ms = [*self.wait_ms[-99:], 1000.0 * (time.monotonic() - requested_at)]

    @property
    def stats(self) -> dict:
        return {
            "active": self.bank.active or "",
            "switches": self.switches,
            "switch_ms": _summary(self.switch_ms),
            "request_to_switch_ms": _summary(self.wait_ms),
        }


def _summary(values: list[float]) -> dict | None:
    return {"p50": float(np.median(values)), "max": max(values), "n": len(values)} if values else None


def watch_adapter_parameter(node, on_switch) -> None:
    """Route changes of ``node``'s ``adapter`` parameter to ``on_switch(name)``; unknown names are refused."""
    from rcl_interfaces.msg import SetParametersResult

    def callback(params):
        for param in params:
            if param.name == "adapter":
                try:
                    on_switch(str(param.value))
                except RobosteerError as err:
                    return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(callback)
