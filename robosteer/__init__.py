"""robosteer: adapt LeRobot VLA policies from a few demonstrations by finetuning only the attention heads that matter.

Robotic Steering (Mitra et al., arXiv 2511.22697) in PyTorch/LeRobot. The library never imports ``rclpy``,
``sim`` or ``mujoco`` at import time; heavy modules are imported where they are used.
"""

__version__ = "0.1.0"
