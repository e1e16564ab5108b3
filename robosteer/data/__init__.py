"""Writing demonstrations as LeRobot datasets (shared by the sim recorder and the ROS 2 recorder).

from robosteer.data import EpisodeWriter, robot_features, read_episode_labels
writer = EpisodeWriter("demos/pick", robot_features(), fps=15, append=True)
writer.add_frame(obs, action, task); ...; writer.save_episode(labels={"colour_name": "red"})
read_episode_labels("demos/pick")   # -> [{"colour_name": "red", ...}, ...] one dict per episode
"""

from robosteer.data.features import check_features_match, robot_features
from robosteer.data.labels import LABELS_FILE, read_episode_labels, write_episode_labels
from robosteer.data.writer import EpisodeWriter

__all__ = [
    "LABELS_FILE",
    "EpisodeWriter",
    "check_features_match",
    "read_episode_labels",
    "robot_features",
    "write_episode_labels",
]
