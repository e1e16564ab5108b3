"""The few-shot adaptation study (``robosteer bench``, ``robosteer demo``) and the micro benchmarks (``--micro``).

from robosteer.study import StudyConfig, run_study
summary = run_study(StudyConfig(out=Path("study"), task="place_cube", demos=10, steps=300, episodes=50))
"""

from robosteer.study.config import METHODS, StudyConfig
from robosteer.study.run import run_study

__all__ = ["METHODS", "StudyConfig", "run_study"]
