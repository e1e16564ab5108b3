"""``robosteer doctor``: check that MuJoCo, LeRobot, torch and ROS 2 work on this machine."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import typer


def doctor(ros: bool = typer.Option(True, help="Also check rclpy pub/sub over DDS on loopback.")) -> None:
    """Check the stack: render a MuJoCo frame, write and read a LeRobot dataset, exchange a ROS 2 message."""
    from rich.console import Console
    from rich.markup import escape

    from robosteer import doctor as checks

    console = Console()
    failures = 0

    def step(name, fn):
        nonlocal failures
        t0 = time.perf_counter()
        try:
            detail = fn()
            detail = f": {escape(detail)}" if detail else ""
            console.print(f"[green]ok[/]   {name} ({time.perf_counter() - t0:.1f} s){detail}")
        except Exception as err:  # report every failing part, then exit non-zero
            failures += 1
            console.print(f"[red]FAIL[/] {name}: {escape(str(err))}")

    def versions():
        import lerobot
        import mujoco
        import torch

        cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
        return f"torch {torch.__version__}, lerobot {lerobot.__version__}, mujoco {mujoco.__version__}, {cuda}"

    def render():
        frame = checks.render_probe_frame()
        return f"frame {frame.shape}, mean {frame.mean():.1f}"

    def dataset():
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        with tempfile.TemporaryDirectory() as tmp:
            checks.write_probe_dataset(Path(tmp, "probe"))
            ds = LeRobotDataset("robosteer/probe", root=Path(tmp, "probe"))
            return f"{ds.num_episodes} episodes, {ds.num_frames} frames"

    step("versions", versions)
    step("MuJoCo offscreen render", render)
    step("LeRobot dataset write/read", dataset)
    if ros:
        step("ROS 2 JointState over Fast DDS", lambda: checks.ros_pubsub_roundtrip())
    if failures:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(name="doctor")(doctor)
