"""Head attribution: which attention heads of a policy carry task-relevant information (Robotic Steering §3).

``rank_heads(policy, dataset_root, RankConfig(...)) -> Ranking``; ``Ranking.save(out_dir)`` writes heads.json and
heads.png; ``load_heads_json(path)`` reads one back. ``HeadTrace`` reads and edits single heads' outputs.
"""

from robosteer.heads.config import SCORE_NAMES, RankConfig, parse_quota, parse_weights
from robosteer.heads.keyframes import FrameConfig, KeyframeConfig, keyframes
from robosteer.heads.ranking import Ranking, rank_heads
from robosteer.heads.report import load_heads_json
from robosteer.heads.trace import ALL_TOKENS, Capture, HeadEdit, HeadTrace

__all__ = [
    "ALL_TOKENS",
    "Capture",
    "HeadEdit",
    "HeadTrace",
    "FrameConfig",
    "KeyframeConfig",
    "RankConfig",
    "Ranking",
    "SCORE_NAMES",
    "keyframes",
    "load_heads_json",
    "parse_quota",
    "parse_weights",
    "rank_heads",
]
