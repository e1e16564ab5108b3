"""The ``robosteer`` command line.

Each capability lives in a module of :mod:`robosteer.commands` that exposes ``register(app)``; this file only
assembles them, so adding a command never touches the others. Commands import their heavy dependencies (torch,
lerobot, mujoco) inside the command body to keep ``robosteer --help`` fast.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import warnings

import typer

import robosteer.commands as commands_pkg
from robosteer.errors import RobosteerError

# Headless rendering and an offline hub are the defaults for every command (a user may override them).
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # one "Map" bar per episode drowns our own bars
# lerobot re-enables datasets' bars after each load; with the variable set, datasets warns every time instead.
# The filter goes to worker processes through PYTHONWARNINGS (read at interpreter start) and applies here directly.
_PROGRESS_WARNING = "ignore:Cannot enable progress bars:UserWarning"
if _PROGRESS_WARNING not in os.environ.get("PYTHONWARNINGS", ""):
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, (os.environ.get("PYTHONWARNINGS"), _PROGRESS_WARNING)))
warnings.filterwarnings("ignore", message="Cannot enable progress bars", category=UserWarning)
# lerobot logs a page-long traceback when torchcodec finds no system FFmpeg, then falls back to pyav by itself.
logging.getLogger("lerobot.utils.import_utils").setLevel(logging.ERROR)

app = typer.Typer(
    name="robosteer",
    help=(
        "Adapt a LeRobot VLA policy from a few demonstrations by finetuning only the attention heads that matter "
        "(Robotic Steering). Typical loop: record -> rank -> finetune -> eval."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """Adapt a LeRobot VLA from a few demonstrations by finetuning only the attention heads that matter."""


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands_pkg.__name__}.{info.name}")
        module.register(app)


_register_commands()


def main() -> None:
    """Entry point: bad input (:class:`RobosteerError`) prints one clear line and exits with status 2."""
    try:
        app()
    except RobosteerError as err:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
