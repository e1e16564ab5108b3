"""Where failed reach_bowl episodes of a `robosteer eval` ended: above the named bowl but too low or high, over the
other bowl, off by some centimetres, or past the far edge of the workspace where bowls are placed; and, over all
episodes, how far the final hand position follows the named bowl (slope of hand on bowl per axis: 1 = goes to
the bowl, 0 = goes to the same place whatever the bowl). Rebuilds each episode's scene from its seed and places the arm at the
recorded final joint state.

    python docs/results/franka-reach-probe/where_it_ends.py EVAL_OUT [EVAL_OUT ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mujoco
import numpy as np

from sim.layout import WORKSPACE_X
from sim.scene import TABLE_TOP_Z
from sim.suites import make_env


def final_hand(env, seed: int, final_state: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hand xyz above the table, named bowl xy, other bowl xy) of one episode."""
    task = env.unwrapped  # past gymnasium's checker: no images are rendered
    task.reset(seed=seed)
    task.data.qpos[task.ids.arm_qpos] = final_state[:7]
    mujoco.mj_kinematics(task.model, task.data)
    hand = task.tcp_pose()[0] - np.array([0.0, 0.0, TABLE_TOP_Z])
    return hand, np.asarray(task.target_xy), task.data.xpos[task.model.body("other_bowl").id][:2].copy()


def classify(hand: np.ndarray, named: np.ndarray, other: np.ndarray, task) -> str:
    off_named, off_other = np.linalg.norm(hand[:2] - named), np.linalg.norm(hand[:2] - other)
    if off_named < task.hover_radius:
        return "above the named bowl, too low" if hand[2] <= task.hover_z[0] else "above the named bowl, too high"
    if off_other < task.bowl_radius:
        return "over the other bowl"
    if off_named < task.bowl_radius:
        return "over the named bowl, 3-7 cm from its centre"
    if hand[0] > WORKSPACE_X[1]:
        return "past the workspace's far edge"
    return "elsewhere"


def main(folders: list[str]) -> None:
    env = make_env("reach_bowl")
    env.unwrapped.render_images = False  # only the scene layout and kinematics are needed
    for folder in folders:
        episodes = json.loads((Path(folder) / "results.json").read_text())["episodes"]
        counts: dict[str, int] = {}
        hands, bowls = [], []
        for episode in episodes:
            hand, named, other = final_hand(env, episode["seed"], episode["final_state"])
            hands.append(hand[:2])
            bowls.append(named)
            if not episode["success"]:
                where = classify(hand, named, other, env.unwrapped)
                counts[where] = counts.get(where, 0) + 1
        hands, bowls = np.array(hands), np.array(bowls)  # (episodes, 2) each
        slopes = [np.polyfit(bowls[:, axis], hands[:, axis], 1)[0] for axis in (0, 1)]
        print(
            f"{folder}: {sum(counts.values())} of {len(episodes)} failed; "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + f"; hand follows the named bowl with slope x {slopes[0]:.2f}, y {slopes[1]:.2f}; final hand "
            f"{100 * np.linalg.norm(hands - bowls, axis=1).mean():.0f} cm from it on average"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
