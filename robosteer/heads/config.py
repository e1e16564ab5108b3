"""RankConfig: every option of a head ranking, validated before any work."""

from __future__ import annotations

from dataclasses import dataclass, field

from robosteer.constants import TOP_K
from robosteer.errors import RobosteerError
from robosteer.heads.keyframes import FrameConfig
from robosteer.heads.readers.base import TOKENS
from robosteer.heads.selection import SELECT_MODES
from robosteer.heads.stability import DEFAULT_THRESHOLD

SCORE_NAMES: tuple[str, ...] = ("physical", "visual", "linguistic")
PHYSICAL_KINDS: tuple[str, ...] = ("physical", "residual")
PROTOCOLS: tuple[str, ...] = ("robosteer", "release")
RELEASE_K_GRID: tuple[int, ...] = (10, 20, 30, 40)
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


def parse_quota(text: str | None, stacks: tuple[str, ...] = ("vlm", "expert")) -> dict[str, int] | None:
    """``"expert=14,vlm=6"`` -> ``{"expert": 14, "vlm": 6}`` (stacks not named get no heads); None/"" -> None."""
    if not text:
        return None
    values = parse_named_floats(text, stacks, "--stack-quota expert=14,vlm=6")
    if any(v < 0 or v != int(v) for v in values.values()) or not any(values.values()):
        raise RobosteerError(f"--stack-quota needs whole numbers >= 0 with at least one > 0, got {text!r}")
    return {name: int(v) for name, v in values.items() if v > 0}


def parse_weights(text: str) -> dict[str, float]:
    """``"physical=1,visual=0.5"`` -> ``{"physical": 1.0, "visual": 0.5}`` (unnamed scores get weight 0)."""
    weights = {name: 0.0 for name in SCORE_NAMES}
    weights.update(parse_named_floats(text, SCORE_NAMES, "--weights physical=1,visual=0.5,linguistic=0.5"))
    return weights


@dataclass
class RankConfig:
    """How heads are scored and selected."""

    top_k: int = TOP_K
    """Heads to select (capped at the number of heads the policy has; the sum of ``stack_quota`` when given)."""
    weights: dict[str, float] = field(default_factory=lambda: {"physical": 1.0, "visual": 0.0, "linguistic": 0.0})
    """Weight of each score in the combined ranking; physical only reproduces the paper."""
    score: str = "physical"
    """What the ``physical`` weight scores: ``physical`` (LOEO k-NN prediction of the action) or ``residual``
    (prediction of what the joint state's own k-NN prediction misses: what a head adds beyond proprioception)."""
    episodes: int | None = None
    """Use the first N episodes of the dataset (None = all)."""
    greedy: bool = False
    """Greedy forward selection on the k-NN error of the concatenated features instead of plain top-k."""
    select: str = "top"
    """``top`` (the ranking's choice), or a control selection written as an ordinary heads.json: ``random`` (a
    random draw, seeded by ``seed``, with the top-k's stack x layer histogram) or ``bottom`` (the lowest-scoring
    heads of the same cells)."""
    stack_quota: dict[str, int] | None = None
    """Heads per stack, e.g. ``{"expert": 14, "vlm": 6}`` (a stack not named gets none; one name = single-stack
    selection). None = one pool."""
    stack_norm: bool = True
    """Min-max normalise each stack's scores before pooling (VLM and expert heads are read at different tokens)."""
    min_layer: int = 0
    """Heads in layers below this one (in every stack) are scored but never selected. The head tuner's backward pass
    stops at the lowest chosen layer, so a higher floor buys step time at the cost of candidate heads."""
    k_grid: tuple[int, ...] = (5, 10, 20, 40)
    """k values tried by the k-NN regression (capped by the data); every head is scored at one shared k."""
    target: str = "delta"
    """Action target: ``delta`` (joint target minus current joint position, gripper as is; like the authors' joint
    velocities) or ``absolute`` (the raw action; mostly predictable from the state alone)."""
    token: str = "auto"
    """Token the heads are read at: auto (vlm: state token, expert: first action token), last_lang, state,
    first_action (tokens a stack never processes fall back to its default)."""
    denoise_step: int = 0
    """Denoising step whose expert call is read (0 = first, pure seeded noise)."""
    frames: FrameConfig = field(default_factory=FrameConfig)
    """Which frames of each episode are scored (keyframes / dense / all / auto)."""
    protocol: str = "robosteer"
    """``robosteer`` (the defaults above) or ``release``: the authors' released recipe (keyframes, k grid 10-40,
    per-k top-k with k chosen on the selection's LOEO error, expert heads read at the first action token of a pass
    on the policy's own sampled clean chunk at t = 0, one pool, physical score only)."""
    controls: bool = True
    """Score a randomly initialised copy of the policy as a control (one more feature pass)."""
    stability_threshold: float = DEFAULT_THRESHOLD
    """Split-half Spearman correlation below which the ranking is reported as not reproducible."""
    sensitivity_frames: int = 32
    """Frames re-run with swapped images / instructions for the causal-sensitivity parts (0 = skip)."""
    causal_frames: int = 200
    """Frames of the mean-ablation causal check (0 = skip)."""
    causal_draws: int = 20
    """Stratified random head sets drawn as the causal check's baseline."""
    batch_size: int = 16
    """Frames per forward pass."""
    seed: int = 0
    """Seed of the denoising noise, image/instruction swaps, random heads and the random-init control."""
    use_cache: bool = True
    """Reuse features cached for the same policy fingerprint, dataset and settings."""
    visual_labels: tuple[str, ...] | None = None
    """Episode-label keys decoded for the visual score (None = keys matching VISUAL_LABEL_HINTS)."""
    linguistic_labels: tuple[str, ...] | None = None
    """Episode-label keys decoded for the linguistic score besides the instruction text (None = by hints)."""
    show_progress: bool = True
    """Show progress bars."""
    explain: bool = False
    """Also draw what each chosen head attends to on a few ranked frames: OUT/explain/ gets a PNG per head (its
    attention over each camera's image patches and over the instruction tokens), a contact sheet of all chosen
    heads and explain.json (per head and frame: the share on each camera, the instruction and the rest)."""
    explain_frames: int = 4
    """Frames shown by ``explain`` (evenly spread over the ranked frames)."""

    def __post_init__(self):
        self._check_choices()
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
        if min(self.sensitivity_frames, self.causal_frames, self.denoise_step) < 0 or self.causal_draws < 1:
            raise RobosteerError("sensitivity_frames, causal_frames, denoise_step must be >= 0, causal_draws >= 1")
        if self.min_layer < 0:
            raise RobosteerError(f"--min-layer must be >= 0 (0 = every layer may be selected), got {self.min_layer}")
        if self.explain_frames < 1:
            raise RobosteerError(
                f"--explain-frames must be >= 1 (frames drawn by --explain), got {self.explain_frames}"
            )
        if self.batch_size < 1:
            raise RobosteerError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.stack_quota:
            self.top_k = sum(self.stack_quota.values())
        if self.protocol == "release":
            self._apply_release()

    def _check_choices(self) -> None:
        for name, value, allowed in (
            ("--target", self.target, ("delta", "absolute")),
            ("--token", self.token, TOKENS),
            ("--score", self.score, PHYSICAL_KINDS),
            ("--select", self.select, SELECT_MODES),
            ("--protocol", self.protocol, PROTOCOLS),
        ):
            if value not in allowed:
                raise RobosteerError(f"{name} {value!r} is not one of {', '.join(allowed)}")

    def _apply_release(self) -> None:
        """The authors' released recipe; options it fixes are overridden (and reported in heads.json)."""
        self.frames = FrameConfig(mode="keyframes", keyframes=self.frames.keyframes)
        self.k_grid = RELEASE_K_GRID
        self.weights = {"physical": 1.0, "visual": 0.0, "linguistic": 0.0}
        self.score, self.stack_norm, self.stack_quota, self.greedy = "physical", False, None, False
