"""Success of one task by where its goal lies, from a `robosteer eval --out DIR` results.json (per-episode labels).

    python docs/results/franka-base-v3/failures_by_target.py EVAL_DIR/results.json [--task push_cube]

Prints, per bin of the goal's table x (distance from the robot base, m), the episodes and successes, and for
push_cube also the push direction (towards the robot or away from it).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict

X_BINS = (0.30, 0.38, 0.46, 0.54, 0.62, 0.70)


def goal_bin(x: float) -> str:
    for low, high in zip(X_BINS, X_BINS[1:], strict=False):
        if low <= x < high:
            return f"{low:.2f}-{high:.2f}"
    return "outside"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="results.json written by robosteer eval --out")
    parser.add_argument("--task", default="push_cube")
    args = parser.parse_args()
    with open(args.results) as f:
        episodes = [e for e in json.load(f)["episodes"] if e["task"] == args.task]
    by_bin, by_direction = defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0])
    for episode in episodes:
        labels = episode["labels"]
        by_bin[goal_bin(labels["target_x"])][0] += 1
        by_bin[goal_bin(labels["target_x"])][1] += int(episode["success"])
        dx, dy = labels["target_x"] - labels["object_x"], labels["target_y"] - labels["object_y"]
        towards_robot = abs(math.degrees(math.atan2(dy, dx))) > 90
        direction = "towards the robot" if towards_robot else "away from the robot"
        by_direction[direction][0] += 1
        by_direction[direction][1] += int(episode["success"])
    print(f"{args.task}: {len(episodes)} episodes")
    print("| goal x [m] | episodes | successes |\n|---|---|---|")
    for name in sorted(by_bin):
        print(f"| {name} | {by_bin[name][0]} | {by_bin[name][1]} |")
    if args.task == "push_cube":
        print("\n| push direction | episodes | successes |\n|---|---|---|")
        for name in sorted(by_direction):
            print(f"| {name} | {by_direction[name][0]} | {by_direction[name][1]} |")


if __name__ == "__main__":
    main()
