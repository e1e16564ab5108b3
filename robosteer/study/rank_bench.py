"""Benchmark of head ranking: time split extract / score / causal for all heads of a policy over N demos.

``benchmark_rank()`` ranks every head of the embedded policy (or, while it is not shipped, a from-scratch SmolVLA of
the same default shape, which costs the same compute) on N demonstrations: recorded with the sim's scripted expert
when the sim suite is installed, else a small synthetic LeRobot dataset written with LeRobot's own writer.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from robosteer.constants import ACTION, GRIPPER_MAX_WIDTH, IMAGE_SIZE, OBS_STATE, image_key

SYNTHETIC_TASKS = ("pick up the red cube", "push the blue cube to the left")
_COLOURS = ((220, 30, 30), (30, 30, 220), (30, 200, 30))


def write_synthetic_demos(
    root: Path, n_episodes: int = 4, n_frames: int = 16, image_size: int = 32, seed: int = 0
) -> Path:
    """A real LeRobotDataset of scripted-looking demos: the arm moves to a per-episode goal, settles, the gripper
    closes, the arm lifts; the front image shows a block whose colour and position depend on the episode."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    img_shape = (image_size, image_size, 3)
    features = {
        OBS_STATE: {"dtype": "float32", "shape": (8,), "names": None},
        ACTION: {"dtype": "float32", "shape": (8,), "names": None},
        image_key("front"): {"dtype": "image", "shape": img_shape, "names": ["height", "width", "channel"]},
        image_key("wrist"): {"dtype": "image", "shape": img_shape, "names": ["height", "width", "channel"]},
    }
    dataset = LeRobotDataset.create("robosteer/synthetic-demos", fps=15, features=features, root=root, use_videos=False)
    rng = np.random.default_rng(seed)
    for ep in range(n_episodes):
        goal = rng.uniform(-0.5, 0.5, 7)
        colour = _COLOURS[ep % len(_COLOURS)]
        q = np.full(7, -0.3)
        for t in range(n_frames):
            phase = t / (n_frames - 1)
            target = goal * min(1.0, 2 * phase) + (0.2 if phase > 0.75 else 0.0)
            grip = GRIPPER_MAX_WIDTH if phase < 0.5 else 0.0
            front = np.full(img_shape, 40, dtype=np.uint8)
            x = int((goal[0] + 0.5) * (image_size - 8))
            front[8:16, x : x + 8] = colour
            wrist = np.clip(front.astype(int) + int(60 * phase), 0, 255).astype(np.uint8)
            dataset.add_frame(
                {
                    OBS_STATE: np.concatenate([q, [grip]]).astype(np.float32),
                    ACTION: np.concatenate([target, [grip]]).astype(np.float32),
                    image_key("front"): front,
                    image_key("wrist"): wrist,
                    "task": SYNTHETIC_TASKS[ep % len(SYNTHETIC_TASKS)],
                }
            )
            q = q + 0.5 * (target - q)
        dataset.save_episode()
    dataset.finalize()
    return root


def _demos(root: Path, n_demos: int) -> tuple[Path, str]:
    try:
        from sim.recording import record_dataset
    except ImportError:
        return write_synthetic_demos(root, n_episodes=n_demos, n_frames=60, image_size=IMAGE_SIZE), "synthetic"
    return Path(
        record_dataset("pick_cube", n_demos, root, teleop="expert", seed=0, progress=False)
    ), "sim expert (pick_cube)"


def _policy(policy, dataset_root: Path):
    from robosteer.policies import load_policy
    from robosteer.policies.loading import embedded_available, make_smolvla
    from robosteer.policies.smolvla_builder import SmolVLASpec

    if policy is not None:
        return load_policy(policy), str(policy)
    if embedded_available():
        return load_policy("embedded"), "embedded"
    return make_smolvla(SmolVLASpec(), dataset_root), "embedded-shaped SmolVLA (embedded not shipped yet)"


def benchmark_rank(
    policy: str | None = None, dataset_root: str | Path | None = None, n_demos: int = 20, top_k: int = 20, console=None
) -> dict:
    """Rank all heads over ``n_demos`` demos and print the time split; returns the timings (seconds)."""
    import torch
    from rich.console import Console

    from robosteer.heads.config import RankConfig
    from robosteer.heads.ranking import rank_heads

    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="robosteer-bench-") as tmp:
        t0 = time.perf_counter()
        if dataset_root is None:
            dataset_root, source = _demos(Path(tmp) / "demos", n_demos)
        else:
            source = str(dataset_root)
        t_data = time.perf_counter() - t0
        loaded, name = _policy(policy, Path(dataset_root))
        config = RankConfig(
            top_k=top_k,
            episodes=n_demos,
            use_cache=False,
            show_progress=False,
            weights={"physical": 1.0, "visual": 0.5, "linguistic": 0.5},
        )
        cpu0 = time.process_time()
        ranking = rank_heads(loaded, dataset_root, config)
        cpu_s = time.process_time() - cpu0
    t = ranking.timings
    result = {
        "policy": name,
        "demos": source,
        "n_episodes": len(ranking.dataset["episodes"]),
        "n_frames": ranking.dataset["n_frames_scored"],
        "frame_mode": ranking.dataset["frame_mode"],
        "n_heads": len(ranking.heads),
        "threads": torch.get_num_threads(),
        "data_s": round(t_data, 2),
        **t,
        "cpu_s": round(cpu_s, 2),
        "causal_ratio": round(ranking.causal.get("ratio", float("nan")), 3),
        "split_half_spearman": ranking.stability.get("spearman"),
    }
    console.print(
        f"rank benchmark: {result['n_heads']} heads of {name}, {result['n_episodes']} demos "
        f"({source}, {result['n_frames']} {result['frame_mode']} frames), {result['threads']} torch threads"
    )
    console.print(
        f"  prepare {t['prepare_s']:.2f} s | extract {t['extract_s']:.2f} s | score {t['score_s']:.2f} s | causal {t['causal_s']:.2f} s | "
        f"total {t['total_s']:.2f} s wall, {cpu_s:.2f} s CPU (target <= 20 s on 2 cores; demos prepared in "
        f"{t_data:.1f} s)"
    )
    return result


if __name__ == "__main__":
    benchmark_rank()
