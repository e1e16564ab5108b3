"""A small SmolVLM "model folder" (config, tokenizer, processor) generated in code, for offline SmolVLA.

LeRobot's SmolVLA calls ``AutoConfig/AutoProcessor.from_pretrained(config.vlm_model_name)`` even when it trains from
scratch (``load_vlm_weights=False``). Nothing may be downloaded here, so :func:`write_vlm_folder` writes a complete,
deterministic folder that those calls accept: a tiny SmolVLM config, a word-level tokenizer (fixed vocabulary: robot
manipulation words plus common English; unknown words map to ``[UNK]``) that declares SmolVLM's special tokens as
``extra_special_tokens``, and a SmolVLM processor (which needs ``num2words``). Same spec -> byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from robosteer.errors import RobosteerError
from robosteer.files import atomic_dir

SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "bos_token": "<|im_start|>",
    "eos_token": "<end_of_utterance>",
}
EXTRA_SPECIAL_TOKENS = {
    "fake_image_token": "<fake_token_around_image>",
    "image_token": "<image>",
    "global_image_token": "<global-img>",
    "end_of_utterance_token": "<end_of_utterance>",
    "video_token": "<video>",
}

_ROBOT_WORDS = """
pick place push press lift grasp grab take put move slide set drop release open close hold carry stack insert pull
rotate turn reach touch tap hit poke nudge shove raise lower bring get fetch transfer deliver position align
cube block box mug cup bowl plate button switch lever drawer door handle ball bottle can object item target goal
marker zone area region spot square circle disk pad mat tray bin basket shelf table surface floor platform
red green blue yellow orange purple pink white black gray grey brown cyan magenta dark light bright small big large
tiny little tall short wide narrow round square flat long left right front back behind forward backward up down top
bottom middle center centre side edge corner near far next beside between above below under over onto into inside
outside on in off to from with at by of the a an it its this that these those them one two three first second last
cylinder sphere marked activate sits pushing air patch circle zone bowl mug cup button ball rack hook peg lid
please carefully gently slowly quickly now then and or again robot arm gripper hand finger joint camera scene
""".split()

_COMMON_WORDS = """
is are was be been being have has had do does did will would can could should may might must shall not no yes
you your we our they their he she him her his i me my what which who where when why how all any each every some
other another such only own same so than too very just also there here out about after before while until because
if as for make made use used go goes went come see look find give keep let help show try ask need want like know
think say tell work call feel leave begin start stop end finish done complete task goal new old good best well
thing things way time times place world hand part point line color colour shape form size thing again still even
much more most many few less least lot next every once twice around through across along against toward towards
away back home both either neither whole half full empty clean dirty heavy soft hard same different other
""".split()


@dataclass(frozen=True)
class VlmSpec:
    """Geometry of the generated SmolVLM (text decoder + vision encoder + connector)."""

    text_hidden_size: int = 192
    """Hidden width of the VLM text decoder (the ``vlm`` head stack)."""
    text_layers: int = 6
    """Decoder layers (SmolVLA uses the first ``num_vlm_layers`` of them)."""
    text_heads: int = 8
    """Query heads per decoder layer."""
    text_kv_heads: int = 4
    """Key/value heads per decoder layer (grouped-query attention like SmolVLM2)."""
    head_dim: int = 24
    """Features per head; the action expert keeps the same head_dim and head counts."""
    text_intermediate_size: int = 512
    """MLP width of the decoder."""
    vision_hidden_size: int = 96
    """Hidden width of the SigLIP-style vision encoder."""
    vision_layers: int = 2
    """Vision encoder layers."""
    vision_heads: int = 4
    """Vision encoder heads."""
    image_size: int = 64
    """Square image side the vision encoder sees (SmolVLA resizes with padding to it)."""
    patch_size: int = 8
    """Vision patch side; (image_size / patch_size) must be divisible by scale_factor."""
    scale_factor: int = 2
    """Pixel-shuffle factor of the connector: tokens per image = (image_size / patch_size / scale_factor) ** 2."""
    extra_words: tuple[str, ...] = ()
    """Words added to the tokenizer's fixed vocabulary, e.g. a suite's instruction words (Meta-World's "puck")."""

    def __post_init__(self):
        if self.text_heads % self.text_kv_heads:
            raise ValueError(f"text_heads={self.text_heads} must be a multiple of text_kv_heads={self.text_kv_heads}")
        if self.image_size % self.patch_size or (self.image_size // self.patch_size) % self.scale_factor:
            raise ValueError(
                f"image_size={self.image_size} / patch_size={self.patch_size} must be an integer "
                f"divisible by scale_factor={self.scale_factor}"
            )
        if self.vision_hidden_size % self.vision_heads:
            raise ValueError("vision_hidden_size must be a multiple of vision_heads")

    @property
    def image_seq_len(self) -> int:
        return (self.image_size // self.patch_size // self.scale_factor) ** 2


def vocabulary(extra_words: tuple[str, ...] = ()) -> list[str]:
    """The tokenizer vocabulary: special tokens first, then sorted unique words, then single characters/digits, then
    the ``extra_words`` not already in it (sorted, so the base vocabulary keeps its ids)."""
    specials = list(dict.fromkeys([*SPECIAL_TOKENS.values(), *EXTRA_SPECIAL_TOKENS.values()]))
    words = sorted(set(_ROBOT_WORDS) | set(_COMMON_WORDS))
    chars = [c for c in "abcdefghijklmnopqrstuvwxyz0123456789.,!?;:'\"-()/" if c not in words]
    base = specials + words + chars
    known = set(base)
    return base + sorted({w.lower() for w in extra_words} - known)


def build_tokenizer(extra_words: tuple[str, ...] = ()):
    """A word-level ``PreTrainedTokenizerFast`` over :func:`vocabulary` (lower-cased, punctuation split off)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(vocabulary(extra_words))}
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    specials = list(dict.fromkeys([*SPECIAL_TOKENS.values(), *EXTRA_SPECIAL_TOKENS.values()]))
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        **SPECIAL_TOKENS,
        extra_special_tokens=EXTRA_SPECIAL_TOKENS,
        model_max_length=512,
        padding_side="right",
    )


def build_smolvlm_config(
    spec: VlmSpec,
    vocab_size: int,
    pad_token_id: int,
    image_token_id: int,
    *,
    rope_theta: float = 10000.0,
    max_position_embeddings: int = 1024,
    vision_intermediate_size: int | None = None,
):
    """A transformers ``SmolVLMConfig`` of ``spec`` (Llama text decoder + SigLIP-style vision encoder); the keyword
    arguments are the settings robosteer's small VLMs leave at these defaults (vision MLP: 4 x its width)."""
    from transformers import LlamaConfig, SmolVLMConfig, SmolVLMVisionConfig

    text = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=spec.text_hidden_size,
        intermediate_size=spec.text_intermediate_size,
        num_hidden_layers=spec.text_layers,
        num_attention_heads=spec.text_heads,
        num_key_value_heads=spec.text_kv_heads,
        head_dim=spec.head_dim,
        max_position_embeddings=max_position_embeddings,
        rms_norm_eps=1e-5,
        rope_theta=rope_theta,
        pad_token_id=pad_token_id,
        tie_word_embeddings=False,
    )
    vision = SmolVLMVisionConfig(
        hidden_size=spec.vision_hidden_size,
        intermediate_size=vision_intermediate_size or spec.vision_hidden_size * 4,
        num_hidden_layers=spec.vision_layers,
        num_attention_heads=spec.vision_heads,
        image_size=spec.image_size,
        patch_size=spec.patch_size,
    )
    return SmolVLMConfig(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        scale_factor=spec.scale_factor,
        image_token_id=image_token_id,
        pad_token_id=pad_token_id,
        tie_word_embeddings=False,
    )


def build_processor(spec: VlmSpec, tokenizer=None):
    """A SmolVLM processor at ``spec``'s image geometry (no image splitting) over ``tokenizer`` (default: robosteer's
    word-level tokenizer)."""
    from transformers import SmolVLMImageProcessor, SmolVLMProcessor, SmolVLMVideoProcessor

    size = {"longest_edge": spec.image_size}
    return SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(do_resize=True, size=size, max_image_size=size, do_image_splitting=False),
        tokenizer=tokenizer if tokenizer is not None else build_tokenizer(spec.extra_words),
        video_processor=SmolVLMVideoProcessor(size=size, max_image_size=size),
        image_seq_len=spec.image_seq_len,
    )


def spec_identity(spec: VlmSpec) -> str:
    """``spec`` as sorted JSON, without ``extra_words`` when there are none (folders written before it existed keep
    their identity)."""
    fields = asdict(spec)
    if not fields["extra_words"]:
        del fields["extra_words"]
    return json.dumps(fields, sort_keys=True)


def write_vlm_folder(out: str | Path, spec: VlmSpec | None = None) -> Path:
    """Write config + tokenizer + processor of a small SmolVLM to ``out`` (atomically); returns the folder.

    The folder is what ``SmolVLAConfig.vlm_model_name`` points at. Existing folders with the same spec are reused.
    """
    spec = spec or VlmSpec()
    out = Path(out)
    marker = out / "robosteer_vlm_spec.json"
    spec_json = spec_identity(spec)
    if marker.exists() and marker.read_text() == spec_json:
        return out

    def write(tmp: Path) -> None:
        tokenizer = build_tokenizer(spec.extra_words)
        config = build_smolvlm_config(
            spec,
            len(tokenizer),
            tokenizer.pad_token_id,
            tokenizer.convert_tokens_to_ids(EXTRA_SPECIAL_TOKENS["image_token"]),
        )
        config.save_pretrained(tmp)
        build_processor(spec, tokenizer).save_pretrained(tmp)
        (tmp / "robosteer_vlm_spec.json").write_text(spec_json)

    try:
        atomic_dir(out, write)
    except Exception as err:
        raise RobosteerError(
            f"could not write the local SmolVLM folder {out}: {err}. "
            "Check that transformers, tokenizers and num2words are installed."
        ) from err
    return out
