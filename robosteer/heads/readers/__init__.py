"""Head readers: one small adapter per architecture says where its heads are read (see :mod:`.base`).

=========  =====================================  ========================  ===============================
policy     prefix (``vlm`` o_proj call 0)          expert call ``k``         tokens (first = stack default)
=========  =====================================  ========================  ===============================
smolvla    images + language + state              action tokens, step k     vlm: state, last_lang;
                                                                            expert: first_action (index 0)
pi0        images + language                      state + action tokens     vlm: last_lang; expert:
                                                                            first_action (index 1), state
pi05       images + prompt (task and state)       action tokens             vlm: last_lang; expert:
                                                                            first_action (index 0)
=========  =====================================  ========================  ===============================

Every reader samples with seeded shared noise through the inner model's ``sample_actions`` and can add the clean
feature pass (the expert once more on the sampled chunk at t = 0, call ``num_steps``).
"""

from __future__ import annotations

from robosteer.errors import RobosteerError
from robosteer.heads.readers.base import TOKENS, HeadReader, Inputs, demonstrated_action
from robosteer.heads.readers.pi import PiReader
from robosteer.heads.readers.smolvla import SmolVLAReader

READERS: dict[str, HeadReader] = {"smolvla": SmolVLAReader(), "pi0": PiReader("pi0"), "pi05": PiReader("pi05")}

__all__ = ["READERS", "TOKENS", "HeadReader", "Inputs", "demonstrated_action", "reader_for"]


def reader_for(model) -> HeadReader:
    """The head reader of a LeRobot policy; a one-line error for architectures without one."""
    kind = getattr(getattr(model, "config", None), "type", None)
    if kind not in READERS:
        raise RobosteerError(
            f"head features are implemented for {', '.join(READERS)} policies; this policy is {kind!r}. "
            "Use one of those (a checkpoint folder, a hub id or 'embedded')."
        )
    reader = READERS[kind]
    reader.check_supported(model)
    return reader
