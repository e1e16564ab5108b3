"""Small random-weight LeRobot pi0 / pi05 policies, built offline, for tests and for trying the loop on a CPU.

LeRobot 0.6 builds pi0/pi05 only at full size: ``PI0Config`` accepts the Gemma variants ``gemma_2b`` (the
PaliGemma decoder) and ``gemma_300m`` (the action expert), looked up in ``get_gemma_config``, and
``PaliGemmaWithExpertModel`` fixes the SigLIP vision tower, the 257 152-token vocabulary and a 2048-wide image
projection. :func:`tiny_gemma` swaps those two names of the policy's modeling module, for the duration of a
``with`` block, for the same code with small numbers (:class:`PiSpec`); everything else (embedding, attention,
denoising, loss, ``save_pretrained``/``from_pretrained``) is LeRobot's own. The config keeps its valid variant
names, so a saved tiny checkpoint is a plain LeRobot checkpoint plus a ``robosteer_tiny_pi.json`` that says which
geometry to build it with; :func:`load_tiny_pi` builds it under :func:`tiny_gemma` and loads the weights with
LeRobot's ``from_pretrained``.

LeRobot's joint attention reshapes the attention output to ``8 * head_dim`` (pi0's 8 query heads), so both stacks
keep 8 query heads and share head_dim and KV heads (the expert attends to the VLM's keys and values).
"""

from __future__ import annotations

import importlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from robosteer.errors import RobosteerError
from robosteer.policies.robot_policy import RobotPolicy

PI_KINDS: tuple[str, ...] = ("pi0", "pi05")
MARKER = "robosteer_tiny_pi.json"
"""File in a tiny pi checkpoint naming its :class:`PiSpec` (LeRobot ignores it)."""
TOKENIZER_SUBDIR = "tokenizer"
"""Checkpoint sub-folder with the word-level tokenizer the tiny build uses instead of PaliGemma's."""
QUERY_HEADS = 8
"""LeRobot's joint attention assumes 8 query heads per layer (``1 * 8 * head_dim``)."""


@dataclass(frozen=True)
class GemmaStack:
    """Geometry of one Gemma stack of a tiny pi policy."""

    width: int
    """Hidden width."""
    depth: int = 2
    """Decoder layers."""
    mlp_dim: int = 128
    """MLP width."""
    num_kv_heads: int = 1
    """Key/value heads (pi0 uses one: multi-query attention)."""
    head_dim: int = 8
    """Features per head (the same in both stacks)."""


@dataclass(frozen=True)
class PiSpec:
    """Size and decoding settings of a tiny pi0/pi05."""

    kind: str = "pi0"
    """``pi0`` or ``pi05``."""
    vlm: GemmaStack = field(default_factory=lambda: GemmaStack(width=64))
    """The PaliGemma decoder (the ``vlm`` heads)."""
    expert: GemmaStack = field(default_factory=lambda: GemmaStack(width=48, mlp_dim=96))
    """The action expert (the ``expert`` heads)."""
    vision_width: int = 32
    """SigLIP hidden width."""
    vision_layers: int = 1
    """SigLIP layers."""
    image_size: int = 32
    """Square image side (LeRobot resizes with padding to it)."""
    patch_size: int = 8
    """SigLIP patch side: (image_size / patch_size) ** 2 image tokens per camera."""
    chunk_size: int = 8
    """Actions predicted per model call."""
    n_action_steps: int = 4
    """Actions executed per model call."""
    num_inference_steps: int = 2
    """Flow-matching denoising steps at inference."""
    tokenizer_max_length: int = 16
    """Instruction tokens (pi05 writes the discretised state into the prompt: use 64 or more)."""

    def __post_init__(self):
        if self.kind not in PI_KINDS:
            raise ValueError(f"kind must be one of {PI_KINDS}, got {self.kind!r}")
        if (self.vlm.head_dim, self.vlm.num_kv_heads) != (self.expert.head_dim, self.expert.num_kv_heads):
            raise ValueError("the VLM and the expert must share head_dim and num_kv_heads (joint attention)")

    @classmethod
    def from_dict(cls, data: dict) -> PiSpec:
        return cls(**{**data, "vlm": GemmaStack(**data["vlm"]), "expert": GemmaStack(**data["expert"])})


def _modeling(kind: str):
    return importlib.import_module(f"lerobot.policies.{kind}.modeling_{kind}")


def _vlm_config(modeling, spec: PiSpec, vocab_size: int, use_adarms: bool):
    """The PaliGemma config LeRobot builds, with the small numbers of ``spec``."""
    config = modeling.CONFIG_MAPPING["paligemma"]()
    config._vocab_size = vocab_size  # noqa: SLF001 (as LeRobot sets it)
    config.image_token_index = vocab_size
    text = config.text_config
    text.hidden_size, text.intermediate_size = spec.vlm.width, spec.vlm.mlp_dim
    text.num_attention_heads, text.num_key_value_heads = QUERY_HEADS, spec.vlm.num_kv_heads
    text.head_dim, text.num_hidden_layers, text.vocab_size = spec.vlm.head_dim, spec.vlm.depth, vocab_size
    text.hidden_activation, text.dtype = "gelu_pytorch_tanh", "float32"
    text.use_adarms, text.adarms_cond_dim = use_adarms, spec.vlm.width if use_adarms else None
    vision = config.vision_config
    vision.image_size, vision.patch_size = spec.image_size, spec.patch_size
    vision.hidden_size, vision.intermediate_size = spec.vision_width, 2 * spec.vision_width
    vision.num_hidden_layers, vision.num_attention_heads = spec.vision_layers, 2
    vision.projection_dim, vision.projector_hidden_act, vision.dtype = spec.vlm.width, "gelu_fast", "float32"
    return config


def _expert_config(modeling, spec: PiSpec, vocab_size: int, use_adarms: bool):
    stack = spec.expert
    return modeling.CONFIG_MAPPING["gemma"](
        head_dim=stack.head_dim,
        hidden_size=stack.width,
        intermediate_size=stack.mlp_dim,
        num_attention_heads=QUERY_HEADS,
        num_hidden_layers=stack.depth,
        num_key_value_heads=stack.num_kv_heads,
        vocab_size=vocab_size,
        hidden_activation="gelu_pytorch_tanh",
        dtype="float32",
        use_adarms=use_adarms,
        adarms_cond_dim=stack.width if use_adarms else None,
    )


def _gemma_table(modeling, spec: PiSpec) -> dict:
    """The two variant names the config keeps, resolved to the small stacks."""

    def as_config(stack: GemmaStack):
        return modeling.GemmaConfig(stack.width, stack.depth, stack.mlp_dim, QUERY_HEADS, stack.num_kv_heads,
                                    stack.head_dim)  # fmt: skip

    return {"gemma_2b": as_config(spec.vlm), "gemma_300m": as_config(spec.expert)}


def _small_paligemma_with_expert(modeling, spec: PiSpec, vocab_size: int):
    """``PaliGemmaWithExpertModel`` with its constructor's fixed sizes replaced by ``spec``'s; every method is
    LeRobot's."""
    base = modeling.PaliGemmaWithExpertModel

    class SmallPaliGemmaWithExpert(base):
        def __init__(self, vlm_config, action_expert_config, use_adarms=None, precision="float32", **kwargs):
            nn.Module.__init__(self)
            adarms = use_adarms or [False, False]
            self.freeze_vision_encoder = kwargs.get("freeze_vision_encoder", False)
            self.train_expert_only = kwargs.get("train_expert_only", False)
            vlm = _vlm_config(modeling, spec, vocab_size, adarms[0])
            self.paligemma = modeling.PaliGemmaForConditionalGenerationWithPiGemma(config=vlm)
            self.gemma_expert = modeling.PiGemmaForCausalLM(
                config=_expert_config(modeling, spec, vocab_size, adarms[1])
            )
            self.gemma_expert.model.embed_tokens = None
            self.to_bfloat16_for_selected_params(precision)
            self._set_requires_grad()

    return base, SmallPaliGemmaWithExpert


@contextmanager
def tiny_gemma(spec: PiSpec, vocab_size: int) -> Iterator[None]:
    """Within the block, LeRobot builds ``spec.kind`` policies at ``spec``'s size (see the module docstring)."""
    modeling = _modeling(spec.kind)
    original_table = modeling.get_gemma_config
    original_class, small_class = _small_paligemma_with_expert(modeling, spec, vocab_size)
    table = _gemma_table(modeling, spec)
    modeling.get_gemma_config = table.__getitem__
    modeling.PaliGemmaWithExpertModel = small_class
    try:
        yield
    finally:
        modeling.get_gemma_config = original_table
        modeling.PaliGemmaWithExpertModel = original_class


# -- tokenizer -------------------------------------------------------------------------------------------------------
def write_tokenizer_folder(out: Path) -> Path:
    """robosteer's word-level tokenizer (plus the numbers 0..255 pi05 writes for the state) in ``out``."""
    from robosteer.files import atomic_dir
    from robosteer.policies.vlm_folder import build_tokenizer

    if (out / "tokenizer.json").is_file():
        return out

    def write(tmp: Path) -> None:
        tokenizer = build_tokenizer()
        tokenizer.add_tokens([str(n) for n in range(256) if str(n) not in tokenizer.get_vocab()])
        tokenizer.save_pretrained(tmp)

    return atomic_dir(out, write)


def _tokenizer_cache_dir() -> Path:
    """``pi-tokenizer-v1`` under robosteer's cache folder."""
    from robosteer.policies.smolvla_builder import cache_root

    return cache_root() / "pi-tokenizer-v1"


def _vocab_size(tokenizer_dir: Path) -> int:
    from transformers import AutoTokenizer

    return len(AutoTokenizer.from_pretrained(str(tokenizer_dir)))


# -- policies ---------------------------------------------------------------------------------------------------------
class TinyPiPolicy(RobotPolicy):
    """A RobotPolicy whose checkpoint also carries the tiny geometry and the tokenizer folder."""

    def __init__(self, *args, spec: PiSpec, tokenizer_dir: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec, self.tokenizer_dir = spec, Path(tokenizer_dir)

    def _save_into(self, folder: Path) -> None:
        super()._save_into(folder)
        shutil.copytree(self.tokenizer_dir, folder / TOKENIZER_SUBDIR)
        (folder / MARKER).write_text(json.dumps(asdict(self.spec), indent=2, sort_keys=True) + "\n")
        _relativise(folder, str(self.tokenizer_dir), TOKENIZER_SUBDIR)


def _relativise(folder: Path, absolute: str, name: str) -> None:
    """Replace the tokenizer folder's machine path in the processor JSON files by the sub-folder name."""
    for file in folder.glob("policy_*.json"):
        text = file.read_text()
        if absolute in text:
            data = json.loads(text)
            file.write_text(json.dumps(_replace(data, absolute, name), indent=4) + "\n")


def _replace(node, old: str, new: str):
    if isinstance(node, dict):
        return {k: _replace(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace(v, old, new) for v in node]
    return new if node == old else node


def _config_class(kind: str):
    conf = importlib.import_module(f"lerobot.policies.{kind}.configuration_{kind}")
    return conf.PI0Config if kind == "pi0" else conf.PI05Config


def _policy_class(kind: str):
    modeling = _modeling(kind)
    return modeling.PI0Policy if kind == "pi0" else modeling.PI05Policy


def make_tiny_pi(spec: PiSpec | None = None, dataset_root=None, seed: int = 0) -> TinyPiPolicy:
    """A random-weight tiny pi0/pi05 RobotPolicy shaped by ``spec``; features and statistics from the LeRobot
    dataset at ``dataset_root`` when given, else the sim suite's features with neutral statistics."""
    from robosteer.policies.layouts import layout_for_policy
    from robosteer.policies.smolvla_builder import default_features, neutral_stats

    spec = spec or PiSpec()
    if dataset_root is None:
        inputs, outputs = default_features()
        stats = neutral_stats(inputs, outputs)
    else:
        from robosteer.policies.loading import dataset_features_and_stats

        inputs, outputs, stats = dataset_features_and_stats(dataset_root)
    stats = _with_quantiles(stats)
    tokenizer_dir = write_tokenizer_folder(_tokenizer_cache_dir())
    config = _config_class(spec.kind)(
        input_features=dict(inputs),
        output_features=dict(outputs),
        device="cpu",
        dtype="float32",
        chunk_size=spec.chunk_size,
        n_action_steps=spec.n_action_steps,
        num_inference_steps=spec.num_inference_steps,
        tokenizer_max_length=spec.tokenizer_max_length,
        image_resolution=(spec.image_size, spec.image_size),
        push_to_hub=False,
    )
    torch.manual_seed(seed)
    with tiny_gemma(spec, _vocab_size(tokenizer_dir)):
        model = _policy_class(spec.kind)(config)
    preprocessor, postprocessor = _pretrained_free_processors(config, stats, tokenizer_dir)
    return TinyPiPolicy(
        model, preprocessor, postprocessor, layout_for_policy(model), spec=spec, tokenizer_dir=tokenizer_dir
    )


def _with_quantiles(stats: dict) -> dict:
    """Statistics with the 1 %/99 % quantiles pi05 normalises with (min/max where a dataset has none)."""
    return {key: {"q01": entry["min"], "q99": entry["max"], **entry} for key, entry in stats.items()}


def _pretrained_free_processors(config, stats, tokenizer_dir: Path):
    """Build the processors of a fresh policy, with the tokenizer step pointed at ``tokenizer_dir``."""
    processor = importlib.import_module(f"lerobot.policies.{config.type}.processor_{config.type}")
    original = processor.TokenizerProcessorStep

    def local_tokenizer(**kwargs):
        return original(**{**kwargs, "tokenizer_name": str(tokenizer_dir)})

    processor.TokenizerProcessorStep = local_tokenizer
    try:
        make = getattr(processor, f"make_{config.type}_pre_post_processors")
        return make(config, dataset_stats=stats)
    finally:
        processor.TokenizerProcessorStep = original


def is_tiny_pi_checkpoint(path: Path) -> bool:
    return (Path(path) / MARKER).is_file()


def load_tiny_pi(path: Path, device: str = "cpu") -> TinyPiPolicy:
    """Load a checkpoint written by :class:`TinyPiPolicy` with LeRobot's ``from_pretrained`` (weights, config,
    processors), building the model at the geometry its marker names."""
    from lerobot.configs import PreTrainedConfig

    from robosteer.policies.layouts import layout_for_policy

    path = Path(path)
    try:
        spec = PiSpec.from_dict(json.loads((path / MARKER).read_text()))
    except (ValueError, TypeError, KeyError) as err:
        raise RobosteerError(f"{path / MARKER} is not a tiny pi spec ({err}); re-save the checkpoint") from err
    tokenizer_dir = path / TOKENIZER_SUBDIR
    config = PreTrainedConfig.from_pretrained(path)
    config.device = device
    with tiny_gemma(spec, _vocab_size(tokenizer_dir)):
        model = _policy_class(spec.kind).from_pretrained(path, config=config)
    preprocessor, postprocessor = _loaded_processors(config, path, tokenizer_dir, device)
    model.eval()
    return TinyPiPolicy(
        model, preprocessor, postprocessor, layout_for_policy(model), spec=spec, tokenizer_dir=tokenizer_dir
    )


def _loaded_processors(config, path: Path, tokenizer_dir: Path, device: str):
    from lerobot.policies.factory import make_pre_post_processors

    return make_pre_post_processors(
        config,
        pretrained_path=str(path),
        preprocessor_overrides={
            "device_processor": {"device": device},
            "tokenizer_processor": {"tokenizer_name": str(tokenizer_dir)},
        },
        postprocessor_overrides={"device_processor": {"device": "cpu"}},
    )
