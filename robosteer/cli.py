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
import sys
import warnings

import typer

import robosteer.commands as commands_pkg
from robosteer.environment import apply_env_defaults
from robosteer.errors import RobosteerError

# Headless rendering and an offline hub are the defaults for every command (a user may override them).
apply_env_defaults()
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
    rich_markup_mode=None,  # help text is plain: "[rad]" or "robosteer[teleop]" print as written
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


LIBRARY_ERRORS = ("safetensors", "pyarrow", "datasets", "json", "huggingface_hub")
"""Packages whose exceptions mean a corrupt or foreign input file: printed as one line like a RobosteerError."""


class _OneLine(logging.Formatter):
    """``warning: message`` (no logger name): library warnings read as one plain line."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def configure_logging() -> None:
    """Warnings and errors of robosteer and the libraries it uses go to stderr as one line each."""
    root = logging.getLogger()
    if any(getattr(h, "_robosteer", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLine())
    handler._robosteer = True
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)


def _library_error(err: BaseException) -> bool:
    return any(cls.__module__.split(".")[0] in LIBRARY_ERRORS for cls in type(err).__mro__[:-2])


def _fail(message: str) -> None:
    print("error: " + " ".join(message.split()), file=sys.stderr, flush=True)  # one line, whatever the message
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input (:class:`RobosteerError`, or a corrupt file a library refuses) prints one line naming
    the problem and the fix, and exits with status 2; Ctrl-C ends without a traceback."""
    configure_logging()
    try:
        app(args=argv, prog_name="robosteer")
    except RobosteerError as err:
        _fail(str(err))
    except KeyboardInterrupt:  # raised outside typer's own handling (which exits 130 quietly)
        print("\ninterrupted", file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    except Exception as err:
        if not _library_error(err):
            raise
        _fail(
            f"{type(err).__name__}: {err}: an input file is corrupt or was written by another version; re-create "
            "it (the command's --help names its inputs)"
        )


if __name__ == "__main__":
    main()
