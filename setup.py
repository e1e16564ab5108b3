"""colcon (ament_python) entry point: ``colcon build`` in a workspace that contains this repository installs the
``robosteer`` ROS 2 package so ``ros2 launch robosteer sim.launch.py`` works.

Name, version, packages, dependencies and console scripts come from pyproject.toml (``pip install -e .`` is
unchanged); this file only adds the files ament needs: the package marker, package.xml, launch files and their
parameter files. setup.cfg puts the console scripts in ``lib/robosteer`` where ``ros2 run`` / launch look.
"""

import tomllib
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "robosteer"
SOURCE = Path(__file__).resolve().parent

metadata = {}
if not Path("pyproject.toml").is_file():
    # `colcon build --symlink-install` runs this file from its build folder, where only setup.py, setup.cfg,
    # package.xml and the packages are linked: read the project table from the source tree instead.
    pyproject = tomllib.loads((SOURCE / "pyproject.toml").read_text())
    project = pyproject["project"]
    find = pyproject.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {})
    metadata = {
        "name": project["name"],
        "version": project["version"],
        "description": project.get("description", ""),
        "packages": find_packages(include=find.get("include", ["*"])),
        "entry_points": {"console_scripts": [f"{name} = {target}" for name, target in project["scripts"].items()]},
        "package_data": pyproject.get("tool", {}).get("setuptools", {}).get("package-data", {}),
    }


def data(pattern: str) -> list[str]:
    """Files of the source tree matching ``pattern``, relative to the folder setup.py runs in."""
    here = Path.cwd()
    return sorted(
        str(Path(p).relative_to(here)) if Path(p).is_relative_to(here) else p for p in glob(str(SOURCE / pattern))
    )


distribution = setup(
    data_files=[
        ("share/ament_index/resource_index/packages", data(f"resource/{PACKAGE}")),
        (f"share/{PACKAGE}", data("package.xml")),
        (f"share/{PACKAGE}/launch", data("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", data("launch/config/*.yaml")),
    ],
    **metadata,
)

# colcon reads the configured distribution back with ast.literal_eval(repr(...)) (run_setup(stop_after="config")):
# requires-python from pyproject.toml arrives as a packaging SpecifierSet, whose repr is not a literal. Commands
# have already run when setup() returns, so this only affects that introspection.
for holder in (distribution, getattr(distribution, "metadata", None)):
    if getattr(holder, "python_requires", None) is not None:
        holder.python_requires = str(holder.python_requires)
