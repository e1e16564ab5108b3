"""Variation axes of the task suite and the named presets used for training and robustness evaluation.

A :class:`VariationConfig` says which axes are randomised; every random draw comes from the env's ``np_random`` at
``reset``, so a seed fixes the whole episode. Presets combine with commas: ``"lighting,distractors"``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from robosteer.errors import RobosteerError

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.1),
    "green": (0.15, 0.7, 0.2),
    "blue": (0.12, 0.3, 0.85),
    "yellow": (0.92, 0.8, 0.1),
    "purple": (0.55, 0.2, 0.7),
    "orange": (0.95, 0.5, 0.1),
    "white": (0.92, 0.92, 0.92),
    "black": (0.1, 0.1, 0.1),
}
"""Object colours by name; the colour id is the index in this dict."""
OBJECT_COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
"""Colours the manipulated object may take (the default is red)."""
FORMS = ("cube", "cylinder", "sphere")
"""Object forms (the default is cube)."""
TABLE_COLOURS = ((0.62, 0.5, 0.38), (0.75, 0.75, 0.75), (0.35, 0.3, 0.28), (0.55, 0.62, 0.5), (0.7, 0.55, 0.55))
"""Table top colours; index 0 is the default wood tone."""


@dataclass(frozen=True)
class VariationConfig:
    """Which variation axes are sampled at reset (everything off = the nominal scene with small position noise)."""

    colour: bool = False
    """Sample the object colour from OBJECT_COLOURS (else red)."""
    form: bool = False
    """Sample the object form (cube/cylinder/sphere) and size (else a 4 cm cube)."""
    wide_positions: bool = False
    """Sample object and target positions over the whole workspace (else a small region around nominal)."""
    wide_goals: bool = False
    """Sample only the goal receptacle's position (place_cube's bowl) over the whole workspace; the object stays in its
    nominal region (``wide_positions`` widens both)."""
    n_distractors_max: int = 0
    """Up to this many distractor objects (0-3) are placed on the table."""
    lighting: bool = False
    """Sample light intensity, direction and colour tint."""
    camera_jitter: bool = False
    """Jitter the front camera pose by a few centimetres/degrees."""
    table_colour: bool = False
    """Sample the table colour from TABLE_COLOURS."""
    paraphrase: str = "canonical"
    """Instruction set: ``canonical`` (one fixed phrasing), ``train`` or ``heldout`` paraphrases."""

    def __post_init__(self):
        if not 0 <= self.n_distractors_max <= 3:
            raise RobosteerError(f"n_distractors_max={self.n_distractors_max} is out of range; use 0-3")
        if self.paraphrase not in ("canonical", "train", "heldout"):
            raise RobosteerError(f"paraphrase={self.paraphrase!r} is unknown; use canonical, train or heldout")


VARIATION_PRESETS: dict[str, VariationConfig] = {
    "none": VariationConfig(),
    "lighting": VariationConfig(lighting=True),
    "distractors": VariationConfig(n_distractors_max=3),
    "object_form": VariationConfig(form=True),
    "colour": VariationConfig(colour=True),
    "position": VariationConfig(wide_positions=True),
    "goal_position": VariationConfig(wide_goals=True),
    "camera": VariationConfig(camera_jitter=True),
    "table": VariationConfig(table_colour=True),
    "paraphrase": VariationConfig(paraphrase="heldout"),
    "train": VariationConfig(colour=True, form=True, n_distractors_max=2, table_colour=True, paraphrase="train"),
    "all": VariationConfig(
        colour=True,
        form=True,
        wide_positions=True,
        n_distractors_max=3,
        lighting=True,
        camera_jitter=True,
        table_colour=True,
        paraphrase="heldout",
    ),
}
"""Named presets. ``none`` is the nominal scene; ``train`` is domain randomisation for demonstrations (train
paraphrases); the others switch on one axis each for robustness evaluation (``paraphrase`` = held-out phrasings)."""


def parse_variations(spec: str | VariationConfig | None) -> VariationConfig:
    """A VariationConfig from a preset name, a comma-separated list of presets, or a config (returned as is)."""
    if isinstance(spec, VariationConfig):
        return spec
    names = [n.strip() for n in (spec or "none").split(",") if n.strip()] or ["none"]
    unknown = [n for n in names if n not in VARIATION_PRESETS]
    if unknown:
        raise RobosteerError(
            f"unknown variation preset(s) {', '.join(unknown)}; valid presets: {', '.join(VARIATION_PRESETS)}"
            " (combine with commas, e.g. 'lighting,distractors')"
        )
    merged = VARIATION_PRESETS[names[0]]
    for name in names[1:]:
        other = VARIATION_PRESETS[name]
        updates = {}
        for f in fields(VariationConfig):
            a, b = getattr(merged, f.name), getattr(other, f.name)
            if f.name == "paraphrase":
                updates[f.name] = b if b != "canonical" else a
            elif f.name == "n_distractors_max":
                updates[f.name] = max(a, b)
            else:
                updates[f.name] = a or b
        merged = replace(merged, **updates)
    return merged
