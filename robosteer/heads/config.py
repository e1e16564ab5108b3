"""RankConfig: every option of a head ranking, validated before any work."""

from __future__ import annotations

from dataclasses import dataclass, field

from robosteer.errors import RobosteerError
from robosteer.heads.keyframes import KeyframeConfig
from robosteer.heads.smolvla import TOKENS

SCORE_NAMES: tuple[str, ...] = ("physical", "visual", "linguistic")
VISUAL_LABEL_HINTS: tuple[str, ...] = ("colo", "form", "shape", "position", "object")
"""Episode-label keys containing one of these are visual attributes (colour id/name, form, position bin...)."""
LINGUISTIC_LABEL_HINTS: tuple[str, ...] = ("paraphrase", "task", "instruction", "verb")
"""Episode-label keys containing one of these are linguistic attributes."""


def parse_named_floats(text: str, names: tuple[str, ...], example: str) -> dict[str, float]:
    """``"a=1,b=0.5"`` -> ``{"a": 1.0, "b": 0.5}``; every name must be one of ``names`` (errors quote ``example``)."""
    values = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in names:
            raise RobosteerError(
                f"bad entry {part!r}: use NAME=VALUE with NAME one of {', '.join(names)}, e.g. {example}"
            )
        try:
            values[name] = float(value)
        except ValueError:
            raise RobosteerError(f"{part!r} is not a number, e.g. {example}") from None
    return values


def parse_weights(text: str) -> dict[str, float]:
    """``"physical=1,visual=0.5"`` -> ``{"physical": 1.0, "visual": 0.5}`` (unnamed scores get weight 0)."""
    weights = {name: 0.0 for name in SCORE_NAMES}
    weights.update(parse_named_floats(text, SCORE_NAMES, "--weights physical=1,visual=0.5,linguistic=0.5"))
    return weights


@dataclass
class RankConfig:
    """How heads are scored and selected."""

    top_k: int = 20
    """Heads to select (capped at the number of heads the policy has)."""
    weights: dict[str, float] = field(default_factory=lambda: {"physical": 1.0, "visual": 0.0, "linguistic": 0.0})
    """Weight of each score in the combined ranking; physical only reproduces the paper."""
    episodes: int | None = None
    """Use the first N episodes of the dataset (None = all)."""
    greedy: bool = False
    """Greedy forward selection on the k-NN error of the concatenated features instead of plain top-k."""
    min_layer: int = 0
    """Heads in layers below this one (in every stack) are scored but never selected. The head tuner's backward pass
    stops at the lowest chosen layer, so a higher floor buys step time at the cost of candidate heads."""
    k_grid: tuple[int, ...] = (5, 10, 20, 40)
    """k values tried by the k-NN regression (capped by the data)."""
    target: str = "delta"
    """Action target: ``delta`` (joint target minus current joint position, gripper as is; like the authors' joint
    velocities) or ``absolute`` (the raw action; mostly predictable from the state alone)."""
    token: str = "auto"
    """Token the heads are read at: auto (vlm: state token, expert: first action token), last_lang, state,
    first_action (tokens a stack never processes fall back to its default)."""
    denoise_step: int = 0
    """Denoising step whose expert call is read (0 = first, pure seeded noise)."""
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    """Which frames of each episode are used."""
    sensitivity_frames: int = 32
    """Keyframes re-run with swapped images / instructions for the causal-sensitivity parts (0 = skip)."""
    causal_frames: int = 32
    """Keyframes used for the mean-ablation causal check (0 = skip)."""
    causal_draws: int = 3
    """Random head sets drawn for the causal check's baseline."""
    batch_size: int = 16
    """Frames per forward pass."""
    seed: int = 0
    """Seed of the denoising noise, image/instruction swaps and random heads."""
    use_cache: bool = True
    """Reuse features cached for the same policy fingerprint, dataset and settings."""
    visual_labels: tuple[str, ...] | None = None
    """Episode-label keys decoded for the visual score (None = keys matching VISUAL_LABEL_HINTS)."""
    linguistic_labels: tuple[str, ...] | None = None
    """Episode-label keys decoded for the linguistic score besides the instruction text (None = by hints)."""
    show_progress: bool = True
    """Show progress bars."""

    def __post_init__(self):
        if self.top_k < 1:
            raise RobosteerError(f"--top-k must be >= 1 (got {self.top_k}); the paper uses 20")
        unknown = set(self.weights) - set(SCORE_NAMES)
        if unknown:
            raise RobosteerError(f"unknown score(s) {sorted(unknown)} in weights; use {', '.join(SCORE_NAMES)}")
        if any(w < 0 for w in self.weights.values()) or not any(w > 0 for w in self.weights.values()):
            raise RobosteerError(f"weights must be >= 0 with at least one > 0, got {self.weights}")
        self.weights = {name: float(self.weights.get(name, 0.0)) for name in SCORE_NAMES}
        if self.episodes is not None and self.episodes < 2:
            raise RobosteerError(
                f"--episodes must be at least 2 (got {self.episodes}): scores are cross-validated "
                "by leaving one episode out"
            )
        if not self.k_grid or min(self.k_grid) < 1:
            raise RobosteerError(f"k_grid must hold positive ints, got {self.k_grid}")
        if self.target not in ("delta", "absolute"):
            raise RobosteerError(f"target must be 'delta' or 'absolute', got {self.target!r}")
        if self.token not in TOKENS:
            raise RobosteerError(f"unknown token {self.token!r}; use one of {', '.join(TOKENS)}")
        if min(self.sensitivity_frames, self.causal_frames, self.denoise_step) < 0 or self.causal_draws < 1:
            raise RobosteerError("sensitivity_frames, causal_frames, denoise_step must be >= 0, causal_draws >= 1")
        if self.min_layer < 0:
            raise RobosteerError(f"--min-layer must be >= 0 (0 = every layer may be selected), got {self.min_layer}")
        if self.batch_size < 1:
            raise RobosteerError(f"batch_size must be >= 1, got {self.batch_size}")
