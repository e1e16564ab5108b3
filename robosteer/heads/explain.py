"""``robosteer rank --explain``: what each chosen head attends to, on a few of the ranked frames.

For evenly spread frames of the ranking's frame table, the policy samples once with every chosen head's attention
recorded (:meth:`robosteer.heads.readers.HeadReader.attention_capture`) where the ranking read the head: ``vlm``
heads in the prefix pass, ``expert`` heads in the ranked denoising step (their keys are the cached prefix, then
the step's own tokens), each at its stack's feature token. Written to ``OUT/explain/``:

* ``<head>.png``: one row per frame; per camera, the frame as the model sees it with the head's attention over
  that camera's image patches as a heat overlay (scaled to the camera's peak; the title gives the camera's share),
  then a bar chart of its attention over the instruction tokens (the token strings on the axis),
* ``contact_sheet.png``: every chosen head on the first frame, with its mean shares in the title,
* ``explain.json``: per head and frame, the share of attention on each camera, on the instruction and on the rest
  (state, action and special tokens), and the top instruction tokens.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robosteer.heads import dataset as ds
from robosteer.heads import features as feats
from robosteer.heads.extraction import evenly_spread
from robosteer.heads.readers import reader_for

EXPLAIN_DIR, CONTACT_SHEET, EXPLAIN_JSON = "explain", "contact_sheet.png", "explain.json"
TOP_TOKENS = 5
"""Instruction tokens listed per head and frame in explain.json."""
SHEET_COLUMNS = 4
"""Heads per row of the contact sheet."""


@dataclass
class Explanation:
    """The chosen heads' attention on a few frames, and what is needed to draw it."""

    heads: list[str]
    tokens: dict[str, str]
    """Per stack, the token its heads are read at."""
    expert_call: int
    frames: list[dict]
    """Per frame: its global index, episode and instruction."""
    cameras: list[str]
    images: list[list[np.ndarray]]
    """Per frame, per camera: the (H, W, 3) image in [0, 1] as the model sees it."""
    segments: dict[str, tuple[int, int]]
    """Key ranges ``[start, end)`` of each camera (by name) and of the language (padding included)."""
    patches: list[tuple[int, int]]
    """Per camera: the key range of its image patches (a square grid, row-major)."""
    language: list[list[tuple[int, str]]]
    """Per frame: (key position, token string) of every real instruction token."""
    probs: dict[str, torch.Tensor]
    """Per head: (n_frames, S_k) attention probabilities over the keys."""


# -- computing ------------------------------------------------------------------------------------------------------
def explain_ranking(policy, dataset_root: str | Path, heads_json: dict, config, out_dir: str | Path) -> Path:
    """Write the chosen heads' attention maps of ``heads_json`` (a ranking's JSON) to ``out_dir``; returns the
    explain.json path. ``config`` (a RankConfig) names the frames, their number and the seed."""
    explanation = attention_on_frames(policy, dataset_root, heads_json, config)
    return write_explanation(explanation, heads_json, out_dir)


def explain_positions(dataset, heads_json: dict, config) -> tuple[feats.FrameTable, list[int]]:
    """The ranking's frame table and ``config.explain_frames`` evenly spread positions in it."""
    frames, _ = ds.frame_table(dataset, list(heads_json["dataset"]["episodes"]), config.frames)
    return frames, evenly_spread(len(frames), config.explain_frames)


def attention_on_frames(policy, dataset_root: str | Path, heads_json: dict, config) -> Explanation:
    """Sample the explained frames (language padded to one length) with the chosen heads' attention recorded."""
    reader = reader_for(policy.model)
    dataset = ds.open_dataset(dataset_root)
    frames, positions = explain_positions(dataset, heads_json, config)
    heads, info = heads_json["selected"], heads_json["policy"]
    tokens = {stack: info["feature_tokens"][stack] for stack in dict.fromkeys(h.split(".")[0] for h in heads)}
    parts, prefix_len = _record(policy, feats.FrameLoader(dataset), frames, positions, tokens, heads, info, config)
    inputs = parts[0][0]
    cameras = _camera_names(policy, len(inputs.images))
    segments = reader.prefix_segments(prefix_len, inputs)
    return Explanation(
        heads=heads,
        tokens=tokens,
        expert_call=int(info["expert_call"]),
        frames=[
            {"frame": frames.index[p], "episode": int(frames.episode[p]), "task": frames.task[p]} for p in positions
        ],
        cameras=cameras,
        images=[img for batch, _ in parts for img in _images(batch)],
        segments={_segment_name(name, cameras): span for name, span in segments.items()},
        patches=[reader.image_patches(policy.model, segments[f"image:{i}"]) for i in range(len(cameras))],
        language=[row for batch, _ in parts for row in _language(policy, reader, batch, segments["language"])],
        probs={h: torch.cat([probs[h] for _, probs in parts]) for h in heads},  # (n_frames, S_k)
    )


@torch.no_grad()
def _record(policy, loader, frames, positions, tokens, heads, info, config) -> tuple[list, int]:
    """Per batch of ``positions``: its inputs and each head's (b, S_k) attention; and the prefix length."""
    model, reader = policy.model, reader_for(policy.model)
    model.eval()
    sample = reader.sample_with_clean_pass if info.get("clean_pass") else reader.sample_actions
    parts, prefix_len = [], 0
    for start in range(0, len(positions), config.batch_size):
        raw = feats.load_batch(loader, frames, positions[start : start + config.batch_size])
        inputs = reader.pad_language(model, reader.model_inputs(model, policy.prepare_batch(raw)))
        captures = reader.captures(tokens, inputs, info["expert_call"])
        with reader.attention_capture(model, policy.layout, heads, captures) as maps:
            sample(model, inputs, config.seed)
        parts.append((inputs, {h: maps.head_probs(h, tokens[h.split(".")[0]]).float().cpu() for h in heads}))
        prefix_len = maps.prefix_len
    return parts, prefix_len


def _camera_names(policy, n: int) -> list[str]:
    """Short camera names (``front`` for ``observation.images.front``), or ``camera <i>``."""
    keys = list(getattr(policy, "image_keys", []))
    if len(keys) != n:
        return [f"camera {i}" for i in range(n)]
    return [key.rsplit(".", 1)[-1] for key in keys]


def _segment_name(name: str, cameras: list[str]) -> str:
    return cameras[int(name.split(":")[1])] if name.startswith("image:") else name


def _images(inputs) -> list[list[np.ndarray]]:
    """Per frame, per camera: the model's (3, H, W) image in [-1, 1] as an (H, W, 3) array in [0, 1]."""
    views = [((image.float().cpu() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy() for image in inputs.images]
    return [[view[b] for view in views] for b in range(inputs.batch_size)]  # (H, W, 3) each


def _language(policy, reader, inputs, span: tuple[int, int]) -> list[list[tuple[int, str]]]:
    """Per frame: (key position, token string) of its real instruction tokens."""
    ids, masks = reader.language_tokens(inputs).cpu(), inputs.lang_masks.cpu()
    words = token_strings(policy)
    return [
        [(span[0] + i, words(int(ids[b, i]))) for i in range(ids.shape[1]) if bool(masks[b, i])]
        for b in range(ids.shape[0])
    ]


def token_strings(policy):
    """``id -> text`` with the policy's own tokenizer (from its preprocessor), or ``#<id>`` without one."""
    tokenizer = next(
        (
            step.input_tokenizer
            for step in getattr(policy.preprocessor, "steps", [])
            if hasattr(step, "input_tokenizer")
        ),
        None,
    )
    if tokenizer is None:
        return lambda token: f"#{token}"
    return lambda token: tokenizer.decode([token]).strip() or repr(tokenizer.decode([token]))


# -- summaries ------------------------------------------------------------------------------------------------------
def shares(explanation: Explanation, probs: torch.Tensor) -> dict[str, float]:
    """Share of one (S_k,) attention row on each camera, on the instruction and on every other key."""
    out = {name: float(probs[start:end].sum()) for name, (start, end) in explanation.segments.items()}
    out["rest"] = max(0.0, 1.0 - sum(out.values()))
    return {name: round(value, 5) for name, value in out.items()}


def top_tokens(probs: torch.Tensor, language: list[tuple[int, str]], count: int = TOP_TOKENS) -> list[dict]:
    """The instruction tokens one (S_k,) attention row weighs most, best first (``index``: the token's place in
    the instruction)."""
    first = language[0][0] if language else 0
    ranked = sorted(language, key=lambda item: -float(probs[item[0]]))[:count]
    return [{"token": text, "index": pos - first, "attention": round(float(probs[pos]), 5)} for pos, text in ranked]


def summary(explanation: Explanation, heads_json: dict) -> dict:
    """The content of explain.json."""
    heads = {}
    for head in explanation.heads:
        stack = head.split(".")[0]
        rows = explanation.probs[head]  # (n_frames, S_k)
        per_frame = [
            {"shares": shares(explanation, row), "top_tokens": top_tokens(row, words)}
            for row, words in zip(rows, explanation.language, strict=True)
        ]
        heads[head] = {
            "token": explanation.tokens[stack],
            "call": 0 if stack == "vlm" else explanation.expert_call,
            "png": f"{head}.png",
            "mean_shares": shares(explanation, rows.mean(0)),
            "frames": per_frame,
        }
    return {
        "version": 1,
        "policy_fingerprint": heads_json.get("policy_fingerprint"),
        "architecture": heads_json["policy"].get("architecture"),
        "tokens": explanation.tokens,
        "cameras": explanation.cameras,
        "frames": explanation.frames,
        "heads": heads,
        "notes": [
            "shares: attention of the head's query token on each camera's tokens, on the instruction (padding "
            "gets none) and on the rest (state, action and special tokens); they sum to 1",
            "vlm heads: the prefix pass; expert heads: the ranked denoising step (keys: the prefix, then its own)",
        ],
    }


# -- writing --------------------------------------------------------------------------------------------------------
def write_explanation(explanation: Explanation, heads_json: dict, out_dir: str | Path) -> Path:
    """One PNG per head, the contact sheet and explain.json in ``out_dir`` (each written atomically)."""
    from robosteer.files import atomic_write, atomic_write_text

    out = Path(out_dir)
    for head in explanation.heads:
        atomic_write(out / f"{head}.png", lambda tmp, head=head: plot_head(explanation, head, tmp))
    atomic_write(out / CONTACT_SHEET, lambda tmp: plot_contact_sheet(explanation, tmp))
    text = json.dumps(summary(explanation, heads_json), indent=2) + "\n"
    return atomic_write_text(out / EXPLAIN_JSON, text)


def heat(explanation: Explanation, probs: torch.Tensor, camera: int) -> np.ndarray:
    """One camera's patch attention as its grid: (side, side), or (1, n) when n is not a square."""
    start, end = explanation.patches[camera]
    values = probs[start:end].numpy()
    side = math.isqrt(len(values))
    return values.reshape(side, side) if side * side == len(values) else values.reshape(1, -1)  # (rows, cols)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _overlay(ax, image: np.ndarray, grid: np.ndarray, left: float = 0.0) -> None:
    """The image with the attention grid stretched over it from x = ``left``: colour and opacity grow with the
    attention (scaled to the grid's peak), so patches the head ignores show the plain image."""
    from matplotlib import colormaps

    height, width = image.shape[:2]
    extent = (left, left + width, height, 0)
    ax.imshow(image, extent=extent)
    scaled = grid / (float(grid.max()) or 1.0)  # (rows, cols) in [0, 1]
    rgba = colormaps["inferno"](scaled)  # (rows, cols, 4)
    rgba[..., 3] = 0.65 * scaled
    ax.imshow(rgba, extent=extent, interpolation="nearest")


def _token_bars(ax, probs: torch.Tensor, language: list[tuple[int, str]], share: float) -> None:
    """A bar per real instruction token, labelled with its text."""
    positions = [pos for pos, _ in language]
    ax.bar(range(len(positions)), [float(probs[pos]) for pos in positions], color="tab:blue")
    ax.set_xticks(range(len(positions)))
    ax.set_xticklabels([text for _, text in language], rotation=60, ha="right", fontsize=7 if len(language) < 30 else 5)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"instruction: {share:.0%} of the attention", fontsize=9)


def plot_head(explanation: Explanation, head: str, path: Path) -> None:
    """One row per frame: each camera with the head's attention over it, then its attention over the instruction."""
    plt = _pyplot()
    n_cams, rows = len(explanation.cameras), len(explanation.frames)
    fig, axes = plt.subplots(
        rows,
        n_cams + 1,
        squeeze=False,
        figsize=(2.8 * n_cams + 5, 2.9 * rows),
        gridspec_kw={"width_ratios": [1] * n_cams + [2]},
    )
    for row, frame in enumerate(explanation.frames):
        probs = explanation.probs[head][row]  # (S_k,)
        part = shares(explanation, probs)
        for cam, name in enumerate(explanation.cameras):
            ax = axes[row][cam]
            _overlay(ax, explanation.images[row][cam], heat(explanation, probs, cam))
            peak = float(heat(explanation, probs, cam).max())
            ax.set_title(f"{name}: {part[name]:.0%} (top patch {peak:.1%})", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row][0].set_ylabel(f"frame {frame['frame']}\n(episode {frame['episode']})", fontsize=8)
        _token_bars(axes[row][n_cams], probs, explanation.language[row], part["language"])
    stack = head.split(".")[0]
    fig.suptitle(f"{head} at {_where(explanation, stack)}; heat scaled to each camera's peak", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def _where(explanation: Explanation, stack: str) -> str:
    token = explanation.tokens[stack]
    return (
        f"token {token}, prefix pass" if stack == "vlm" else f"token {token}, denoising call {explanation.expert_call}"
    )


def plot_contact_sheet(explanation: Explanation, path: Path) -> None:
    """Every chosen head on the first frame (cameras side by side), titled with its mean shares over the frames."""
    plt = _pyplot()
    n = len(explanation.heads)
    cols = min(SHEET_COLUMNS, n)
    rows = math.ceil(n / cols)
    n_cams = len(explanation.cameras)
    fig, axes = plt.subplots(rows, cols, squeeze=False, figsize=(2.2 * n_cams * cols + 0.5, 2.9 * rows))
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, head in zip(axes.flat, explanation.heads, strict=False):
        probs = explanation.probs[head][0]  # (S_k,) first frame
        left = 0.0
        for cam, image in enumerate(explanation.images[0]):
            _overlay(ax, image, heat(explanation, probs, cam), left)
            if cam:
                ax.axvline(left, color="white", linewidth=1.5)
            left += image.shape[1]
        ax.set_xlim(0, left)
        ax.set_ylim(explanation.images[0][0].shape[0], 0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{head}\n{_share_line(explanation, head)}", fontsize=7)
    frame = explanation.frames[0]
    fig.suptitle(
        f"{n} chosen heads on frame {frame['frame']} (cameras: {', '.join(explanation.cameras)}); "
        f"shares: mean over {len(explanation.frames)} frames",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def _share_line(explanation: Explanation, head: str) -> str:
    """``front 40% wrist 20% lang 30% ('red')``: a head's mean shares and its top instruction token."""
    rows = explanation.probs[head]  # (n_frames, S_k)
    mean = shares(explanation, rows.mean(0))
    cams = " ".join(f"{name} {mean[name]:.0%}" for name in explanation.cameras)
    best = top_tokens(rows[0], explanation.language[0], 1)
    word = f" ({best[0]['token']!r})" if best else ""
    return f"{cams} lang {mean['language']:.0%}{word}"
