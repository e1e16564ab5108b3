"""How well do a trained policy's image tokens locate the white bowl, next to the same encoder untrained?

Runs the reach_bowl recording's frames whose named bowl is white (every 10th frame) through the policy's vision
encoder + connector (the tokens its VLM decoder receives) and fits a ridge regression from the tokens to the bowl's
table position, cross-validated over episodes (5 folds; the ridge strength with the lowest error is kept). The same
is done with the encoder re-initialised at random: what training on actions added to the tokens' knowledge of where
the bowl is. With ``--test DATASET`` the ridge (strength chosen by that cross-validation) is refit on every training
frame and scored on a separate recording instead (episodes no policy trained on, e.g. `robosteer record sim --task
reach_bowl --episodes 100 --seed 700000 --variations none --noise 0.01 --out FRESH`): a run trained with
``--locate-weight`` saw its own recording's positions, so only new episodes test its tokens fairly.

    python docs/results/franka-reach-probe/tokens_locate.py RUN [RUN ...] [--test FRESH]   # pretraining outputs
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from robosteer.policies.loading import load_policy
from robosteer.pretrain.data import load_demos

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


def dataset_of(run: Path) -> Path:
    options = json.loads((run / "options.json").read_text())
    data = options.get("data") or [run / "dataset"]
    return Path(data[0] if isinstance(data, list) else data)


def white_frames(dataset: Path, image_size: int, keys: list[str], every: int = 10):
    """(images per key (N, 3, S, S) uint8, bowl xy (N, 2) [m], episode of each frame)."""
    labels = [json.loads(line)["labels"] for line in open(dataset / "meta" / "robosteer_episode_labels.jsonl")]
    demos = load_demos(dataset, image_size, keys)
    ends = np.unique(demos.episode_end.numpy())
    starts = np.r_[0, ends[:-1]]
    white = [e for e, lab in enumerate(labels) if lab["colour_name"] == "white"]
    frames = np.concatenate([np.arange(starts[e], ends[e], every) for e in white])
    episodes = np.searchsorted(ends, frames, side="right")
    xy = np.array([[labels[e]["target_x"], labels[e]["target_y"]] for e in episodes])
    return {k: demos.images[k][frames] for k in keys}, xy, episodes


def as_input(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255 * 2 - 1  # SmolVLA feeds the vision encoder pixels in [-1, 1]


def tokens(vlm_with_expert, images: dict[str, torch.Tensor]) -> np.ndarray:
    """(N, cameras * tokens * hidden) connector outputs."""
    out = []
    with torch.no_grad():
        for frames in images.values():
            chunks = [as_input(frames[i : i + 256]) for i in range(0, len(frames), 256)]
            out.append(torch.cat([vlm_with_expert.embed_image(c).flatten(1) for c in chunks]).numpy())
    return np.hstack(out)


def reinitialise_encoder(vlm_with_expert) -> None:
    torch.manual_seed(0)
    model = vlm_with_expert.get_vlm_model()
    for module in [*model.vision_model.modules(), *model.connector.modules()]:
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


def ridge_cv(features: np.ndarray, xy: np.ndarray, episodes: np.ndarray, folds: int = 5):
    """(rmse per axis [cm], share within 3 cm, ridge strength) at the strength with the lowest mean rmse."""
    x = (features - features.mean(0)) / (features.std(0) + 1e-6)
    best = None
    for alpha in ALPHAS:
        error = np.zeros_like(xy)
        for fold in range(folds):
            held = episodes % folds == fold
            mean = xy[~held].mean(0)
            a = x[~held]
            weights = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ (xy[~held] - mean))
            error[held] = x[held] @ weights + mean - xy[held]
        rmse = np.sqrt((error**2).mean(0)) * 100
        if best is None or rmse.mean() < best[0].mean():
            best = (rmse, float((np.linalg.norm(error, axis=1) < 0.03).mean()), alpha)
    return best


def fit_and_test(train_x, train_xy, test_x, test_xy, alpha: float):
    """(rmse per axis [cm], share within 3 cm) of a ridge fit on all training frames, on the test frames."""
    mean_x, std_x = train_x.mean(0), train_x.std(0) + 1e-6
    a, b = (train_x - mean_x) / std_x, (test_x - mean_x) / std_x
    mean = train_xy.mean(0)
    weights = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ (train_xy - mean))
    error = b @ weights + mean - test_xy
    return np.sqrt((error**2).mean(0)) * 100, float((np.linalg.norm(error, axis=1) < 0.03).mean())


def probe(run: Path, test: Path | None) -> None:
    policy = load_policy(str(run / "policy"), threads=1)
    config = policy.model.config
    keys = [k for k in config.input_features if k.startswith("observation.images.")]
    side = config.resize_imgs_with_padding[0]
    images, xy, episodes = white_frames(dataset_of(run), side, keys)
    fresh = white_frames(test, side, keys) if test else None
    vlm_with_expert = policy.model.model.vlm_with_expert
    spread = xy.std(0) * 100
    print(
        f"{run}: {len(xy)} frames of {len(set(episodes))} episodes; bowl spread x {spread[0]:.1f} cm, y {spread[1]:.1f} cm"
    )
    for name in ("trained", "untrained"):
        if name == "untrained":
            reinitialise_encoder(vlm_with_expert)
        features = tokens(vlm_with_expert, images)
        rmse, within, alpha = ridge_cv(features, xy, episodes)
        where = "cross-validated"
        if fresh:
            rmse, within = fit_and_test(features, xy, tokens(vlm_with_expert, fresh[0]), fresh[1], alpha)
            where = f"on {len(fresh[1])} frames of {test}"
        print(
            f"  {name} encoder: rmse x {rmse[0]:.1f} cm, y {rmse[1]:.1f} cm; within 3 cm {within:.0%} "
            f"(ridge {alpha:g}, {where})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="pretraining output folders (policy/, options.json)")
    parser.add_argument("--test", type=Path, help="score on this separate reach_bowl recording instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for run in args.runs:
        probe(run, args.test)


if __name__ == "__main__":
    main()
